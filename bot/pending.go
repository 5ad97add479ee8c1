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
// the confirm button's value.
type pendingStore struct {
	mu    sync.Mutex
	items map[string]pendingHalt
	now   func() time.Time
}

func newPendingStore(now func() time.Time) *pendingStore {
	return &pendingStore{items: map[string]pendingHalt{}, now: now}
}

// Put stores p and returns its token.
func (s *pendingStore) Put(p pendingHalt) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p.Expires = now.Add(pendingTTL)
	if len(s.items) >= pendingMax/2 {
		s.sweep(now)
	}
	if len(s.items) >= pendingMax {
		s.dropOldest()
	}
	s.items[token] = p
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

func (s *pendingStore) sweep(now time.Time) {
	for k, p := range s.items {
		if !now.Before(p.Expires) {
			delete(s.items, k)
		}
	}
}

func (s *pendingStore) dropOldest() {
	var oldest string
	var at time.Time
	for k, p := range s.items {
		if oldest == "" || p.Expires.Before(at) {
			oldest, at = k, p.Expires
		}
	}
	delete(s.items, oldest)
}
