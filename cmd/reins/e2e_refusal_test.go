package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A burst of refused kills is answered at once, each in its ack, slowed down
// after a few, and leaves one audit row carrying the count.
func TestRefusedKillBurstAuditedOnce(t *testing.T) {
	e := startTestMain(t, testOptions{})
	const burst = 8
	for i := range burst {
		status, body := e.slash(mallory, "C0SUPPORTAI", "kill support-bot now")
		var ack struct{ Text string }
		if err := json.Unmarshal(body, &ack); status != 200 || err != nil || !strings.Contains(ack.Text, "You") {
			t.Fatalf("attempt %d: ack %d %s, want the refusal itself", i+1, status, body)
		}
		if i >= 5 && !strings.Contains(ack.Text, "wait a minute") {
			t.Errorf("attempt %d not rate-limited: %q", i+1, ack.Text)
		}
	}
	e.Main.Bot.Wait()
	audit, err := e.Main.Store.FindAudit(t.Context(), "support-bot", 100)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, a := range audit {
		if a.Action == "kill_refused" {
			rows = append(rows, a.Detail)
		}
	}
	if len(rows) != 1 || !strings.Contains(rows[0], "8 attempts") {
		t.Fatalf("refusal audit rows = %q, want one carrying \"8 attempts\"", rows)
	}
	if n := len(e.Halt.Messages()); n != 0 {
		t.Fatalf("halt endpoint got %d requests from refused kills", n)
	}
}
