package sqlstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
)

// A chunk's body gives back every field a step's row gave, with the
// numbers moved to the base the write found (the body is encoded before
// the transaction that numbers the steps), and a damaged body is an error,
// not a panic or a wrong step.
func TestStepBodyRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
	steps := []sessions.Step{
		{SpanID: "00000000000000a1", TraceID: "t1", ParentID: "p", Start: at, Duration: 1500*time.Microsecond + 7,
			Kind: sessions.KindChat, Name: "chat gpt-4.1", Model: "gpt-4.1", InputTokens: 100, OutputTokens: 10,
			Cost: 0.00028, Priced: true, Received: at.Add(time.Second), N: 1},
		{SpanID: "00000000000000a2", TraceID: "t1", ParentID: "p", Start: at.Add(-time.Hour), Kind: sessions.KindTool,
			Name: "execute_tool", Tool: "salesforce.update", Error: true, ErrorType: "timeout", System: "crm",
			Content: "ünïcode …", ArgsHash: "h1", Scores: map[string]float64{"b": -1.5, "a": 0.25}, N: 3},
		{SpanID: "", Start: time.Time{}, Received: time.Time{}, Kind: "", InputTokens: -1, N: 4},
	}
	body := encodeSteps(nil, 1, steps)
	got, err := decodeSteps(nil, "support-bot", "s-1", 101, body)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		want := st
		want.Agent, want.Session, want.N = "support-bot", "s-1", st.N+100
		want.Start = st.Start.UTC().Truncate(time.Microsecond)
		want.Received = st.Arrival().UTC().Truncate(time.Microsecond)
		want.Duration = st.Duration.Truncate(time.Microsecond)
		if st.Start.IsZero() {
			want.Start, want.Received = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("step %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	if len(got) != len(steps) {
		t.Fatalf("%d steps decoded, want %d", len(got), len(steps))
	}
	for cut := 1; cut < len(body); cut++ {
		if out, err := decodeSteps(nil, "a", "s", 1, body[:cut]); err == nil && len(out) == len(steps) {
			t.Fatalf("a body cut at %d of %d decoded whole", cut, len(body))
		}
	}
	var ids []string
	if err := eachSpanID(appendSpanIDs(nil, steps), func(id []byte) { ids = append(ids, string(id)) }); err != nil ||
		!reflect.DeepEqual(ids, []string{"00000000000000a1", "00000000000000a2", ""}) {
		t.Errorf("span IDs: %q, %v", ids, err)
	}
}
