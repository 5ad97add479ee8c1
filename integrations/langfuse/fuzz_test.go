package langfuse_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/langfuse"
)

// FuzzDecode feeds arbitrary pages to the observations decoder: it must not
// panic, and every step belongs to the session asked for and has a span ID.
func FuzzDecode(f *testing.F) {
	page, _ := json.Marshal(map[string]any{"data": observations(traces(time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC))),
		"meta": map[string]any{"cursor": "Mw=="}})
	f.Add(page)
	f.Add([]byte(`{"data":[{"id":"x","startTime":"2026-12-06T14:00:00Z","type":"TOOL","usageDetails":{"input":"12"}}],"meta":{}}`))
	f.Add([]byte(`{"data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		steps, _, err := langfuse.Decode(body, "s-1", "support-bot")
		if err != nil {
			return
		}
		for _, st := range steps {
			if st.Session != "s-1" || st.Agent != "support-bot" || st.SpanID == "" || st.InputTokens < 0 || st.OutputTokens < 0 {
				t.Fatalf("bad step %+v", st)
			}
		}
	})
}
