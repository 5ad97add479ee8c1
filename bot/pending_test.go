package bot

import (
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
)

func TestPendingStore(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	s := newPendingStore(func() time.Time { return now })
	p := pendingHalt{Cmd: incidents.HaltCommand{Agent: "support-bot"}, UserID: "U01ALICE"}

	t.Run("OK", func(t *testing.T) {
		token := s.Put(p)
		if len(token) != 32 {
			t.Fatalf("token %q, want 32 hex characters", token)
		}
		if got, ok := s.Get(token); !ok || got.Cmd.Agent != "support-bot" {
			t.Fatalf("Get = %+v, %v", got, ok)
		}
		if _, ok := s.Take(token); !ok {
			t.Fatal("first Take failed")
		}
		if _, ok := s.Take(token); ok {
			t.Fatal("second Take succeeded, want the token consumed")
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		token := s.Put(p)
		now = now.Add(pendingTTL)
		if _, ok := s.Get(token); ok {
			t.Fatal("Get after the TTL succeeded")
		}
		if _, ok := s.Take(token); ok {
			t.Fatal("Take after the TTL succeeded")
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		first := s.Put(p)
		for range pendingMax {
			s.Put(p)
		}
		if n := len(s.items); n > pendingMax {
			t.Fatalf("%d pending confirmations held, want at most %d", n, pendingMax)
		}
		if _, ok := s.Get(first); ok {
			t.Fatal("the oldest confirmation survived the cap")
		}
	})
	t.Run("TakenTokensDoNotPileUp", func(t *testing.T) {
		s := newPendingStore(func() time.Time { return now })
		s.Put(p) // stays live at the front of the queue
		for range 3 * pendingMax {
			s.Take(s.Put(p))
		}
		if n := len(s.order); n > 2*pendingMax+1 {
			t.Fatalf("queue holds %d tokens, want at most %d", n, 2*pendingMax+1)
		}
	})
}
