package bot

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// A command's work waits while acks are being served and starts once they
// stop; under acks that never stop it still starts, ackYield after its ack.
func TestCommandWorkWaitsForAcks(t *testing.T) {
	hs := newHarness(t, &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) { return nil, nil }})
	send := func() time.Time {
		form := url.Values{"command": {"/agent"}, "text": {"status"}, "user_id": {"U01ALICE"}, "user_name": {"alice"},
			"channel_id": {"C0GENERAL"}, "response_url": {hs.slack.ResponseURL()}, "trigger_id": {fmt.Sprintf("T.%d", clicks.Add(1))}}
		if rec := hs.serve(hs.h.Commands(), form.Encode(), nil); rec.Code != http.StatusOK {
			t.Fatalf("status %d, body %s", rec.Code, rec.Body)
		}
		return time.Now()
	}
	answered := func(n int, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for len(hs.slack.Responses()) < n {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}

	// Another ack in flight: the answer waits for it.
	hs.h.acks.serving()
	send()
	if answered(1, 200*time.Millisecond) {
		t.Fatal("the command was answered while an ack was being served")
	}
	hs.h.acks.served()
	if !answered(1, 500*time.Millisecond) {
		t.Fatal("no answer 500 ms after the acks stopped")
	}

	// Acks that never stop: the answer comes at ackYield, not never.
	hs.h.acks.serving()
	defer hs.h.acks.served()
	acked := send()
	if !answered(2, ackYield+time.Second) {
		t.Fatalf("no answer %v after the ack under endless acks", ackYield+time.Second)
	}
	if waited := hs.slack.Responses()[1].At.Sub(acked); waited < ackYield-50*time.Millisecond {
		t.Errorf("answered %v after the ack under endless acks, want about %v", waited, ackYield)
	}
}
