package otlp_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/otlp"
)

// FuzzMap feeds decoded requests, JSON and protobuf (the seed corpus holds
// the captures of real libraries), to the span mapping: it must never
// panic, every step it keeps has a valid session ID and a known agent,
// and every pending step a known agent and no session.
func FuzzMap(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	captured, _ := filepath.Glob("testdata/capture/requests/*/0*.json")
	files = append(files, captured...)
	pbs, _ := filepath.Glob("testdata/capture/requests/*/0*.pb")
	for _, name := range pbs {
		b, _ := os.ReadFile(name)
		f.Add(b, true)
	}
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b, false)
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalJSON(b) == nil {
			if pb, err := req.MarshalProto(); err == nil {
				f.Add(pb, true)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, proto bool) {
		req := ptraceotlp.NewExportRequest()
		var err error
		if proto {
			err = req.UnmarshalProto(body)
		} else {
			err = req.UnmarshalJSON(body)
		}
		if err != nil {
			return
		}
		res := otlp.MapNames(req.Traces(), resolve, otlp.Names{Session: []string{"app.session"},
			Tool: []string{"app.tool"}, Agent: []string{"app.agent"}})
		for _, st := range res.Pending {
			if st.Session != "" || st.Agent != "support-bot" {
				t.Fatalf("pending step %+v: want no session and a known agent", st)
			}
		}
		for _, b := range res.Bindings {
			if why := sessions.ValidID(b.Session); why != "" || b.Agent != "support-bot" {
				t.Fatalf("binding %+v: %s", b, why)
			}
		}
		for _, st := range res.Steps {
			if st.InputTokens < 0 || st.OutputTokens < 0 {
				t.Fatalf("negative tokens in %+v", st)
			}
			if why := sessions.ValidID(st.Session); why != "" {
				t.Fatalf("kept a step with an invalid session %q: %s", st.Session, why)
			}
			if st.Agent != "support-bot" {
				t.Fatalf("kept a step of agent %q", st.Agent)
			}
			if len(st.Tool) > 256 || len(st.Model) > 128 || !utf8.ValidString(st.Kind) && len(st.Kind) > 64 {
				t.Fatalf("unbounded field in %+v", st)
			}
		}
	})
}
