package bot

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// pendingTTL is how long a confirmation button stays good. After a restart or
// on another replica the token is unknown and the user simply runs the
// command again: a halt confirmed hours later would act on a stale decision.
const pendingTTL = 10 * time.Minute

// pendingMax bounds memory if someone requests confirmations in a loop.
const pendingMax = 10000

// pendingHalt is a halt waiting for its confirmation click.
type pendingHalt struct {
	Cmd       incidents.HaltCommand
	UserID    string // who asked; only they may confirm
	ChannelID string
	Expires   time.Time
}

// pendingStore holds confirmations in memory, keyed by a random token that is
// the confirm button's value. Every entry lives pendingTTL, so insertion
// order is expiry order: order is a queue that sweeping pops from the front.
type pendingStore struct {
	mu    sync.Mutex
	items map[string]pendingHalt
	order []string // tokens by insertion; may still name taken tokens
	now   func() time.Time
}

func newPendingStore(now func() time.Time) *pendingStore {
	return &pendingStore{items: map[string]pendingHalt{}, now: now}
}

// Put stores p and returns its token. At pendingMax the oldest is dropped.
func (s *pendingStore) Put(p pendingHalt) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p.Expires = now.Add(pendingTTL)
	s.sweep(now)
	for len(s.items) >= pendingMax && len(s.order) > 0 {
		delete(s.items, s.order[0])
		s.order = s.order[1:]
	}
	if len(s.order) > 2*pendingMax {
		s.compact()
	}
	s.items[token] = p
	s.order = append(s.order, token)
	return token
}

// Get returns the live pending halt for token without consuming it.
func (s *pendingStore) Get(token string) (pendingHalt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.items[token]
	if !ok || !s.now().Before(p.Expires) {
		return pendingHalt{}, false
	}
	return p, true
}

// Take consumes token: of two concurrent clicks exactly one gets ok.
func (s *pendingStore) Take(token string) (pendingHalt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.items[token]
	delete(s.items, token)
	if !ok || !s.now().Before(p.Expires) {
		return pendingHalt{}, false
	}
	return p, true
}

// sweep drops expired and already taken tokens from the front of the queue.
func (s *pendingStore) sweep(now time.Time) {
	for len(s.order) > 0 {
		p, ok := s.items[s.order[0]]
		if ok && now.Before(p.Expires) {
			return
		}
		delete(s.items, s.order[0])
		s.order = s.order[1:]
	}
}

// compact rebuilds the queue without taken tokens, when many were taken
// while an older one is still live.
func (s *pendingStore) compact() {
	live := make([]string, 0, len(s.items))
	for _, t := range s.order {
		if _, ok := s.items[t]; ok {
			live = append(live, t)
		}
	}
	s.order = live
}
