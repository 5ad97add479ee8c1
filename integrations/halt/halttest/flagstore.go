package halttest

import (
	"context"
	"sync"

	"github.com/reins-oss/reins/incidents"
)

// FlagStore is an in-memory kill-flag store (halt.FlagStore). Several
// halt.Flags on one FlagStore behave like reins replicas on one database.
type FlagStore struct {
	mu    sync.Mutex
	flags map[[2]string]incidents.KillFlag
	err   error
	sets  int
}

// NewFlagStore returns an empty store.
func NewFlagStore() *FlagStore { return &FlagStore{flags: map[[2]string]incidents.KillFlag{}} }

// SetKillFlag upserts f by (Agent, Session).
func (s *FlagStore) SetKillFlag(ctx context.Context, f incidents.KillFlag) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.sets++
	s.flags[[2]string{f.Agent, f.Session}] = f
	return nil
}

// KillFlags returns every flag.
func (s *FlagStore) KillFlags(ctx context.Context) ([]incidents.KillFlag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make([]incidents.KillFlag, 0, len(s.flags))
	for _, f := range s.flags {
		out = append(out, f)
	}
	return out, nil
}

// Fail makes every call return err until Fail(nil).
func (s *FlagStore) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Sets counts successful SetKillFlag calls.
func (s *FlagStore) Sets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sets
}
