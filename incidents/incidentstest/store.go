// Package incidentstest holds test doubles for the incidents domain: an
// in-memory Store, hand-written fakes made of function fields for the Chat,
// Pager, Halter and Authority ports, an injectable Clock, and builders for
// registries, alerts and a wired Service.
package incidentstest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

var (
	_ incidents.Store = (*Store)(nil)
	_ outbox.Store    = (*Store)(nil) // the outbox's role, which incidents.Store includes
)

// Store is an in-memory incidents.Store. InTx runs on a copy of the data that
// replaces it only when fn returns nil, so a failed transaction leaves no trace,
// as on a real database. Transactions are serialised by one mutex.
//
// Calling the Store itself (rather than the Queries handed to fn) from inside
// InTx deadlocks: that is a bug in the caller, which a test then reveals.
type Store struct {
	*tx // autocommit queries on the live data

	mu    sync.Mutex
	d     *data
	calls map[string]int
	locks map[string]*sync.Mutex
	slack slackState // the Slack side's state, outside transactions as in sqlstore

	// Hook, when set, runs before every query with the method name; a non-nil
	// error is returned by the query instead of running it. Set it before use.
	Hook func(method string) error

	webKeys map[string]string // WebKey; outside data: not transactional
}

// NewStore returns an empty Store.
func NewStore() *Store {
	s := &Store{d: newData(), calls: map[string]int{}, locks: map[string]*sync.Mutex{}}
	s.tx = &tx{s: s}
	return s
}

// InTx runs fn in one transaction, committed when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(q incidents.Queries) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	work := s.d.clone()
	if err := fn(&tx{s: s, d: work}); err != nil {
		return err
	}
	s.d = work
	return nil
}

// TryLock runs fn unless another caller holds the named lock.
func (s *Store) TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	s.mu.Lock()
	l, ok := s.locks[name]
	if !ok {
		l = &sync.Mutex{}
		s.locks[name] = l
	}
	s.mu.Unlock()
	if !l.TryLock() {
		return false, nil
	}
	defer l.Unlock()
	return true, fn(ctx)
}

// Ping always succeeds.
func (s *Store) Ping(ctx context.Context) error { return nil }

// OutboxRows is the name under which Calls counts outbox items handed to
// the store by any method, queued or not (a key already taken).
const OutboxRows = "outbox rows"

// Calls returns how many times a query method ran, in or out of transactions.
func (s *Store) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// TotalCalls returns how many query methods ran in all.
func (s *Store) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for m, c := range s.calls {
		if m != OutboxRows {
			n += c
		}
	}
	return n
}

// ResetCalls zeroes the call counters.
func (s *Store) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// OutboxItems returns every outbox item in any state, oldest first.
func (s *Store) OutboxItems() []outbox.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]outbox.Item, len(s.d.outbox))
	for i, it := range s.d.outbox {
		out[i] = cloneOutbox(it)
	}
	return out
}

// Incidents returns every incident, oldest first.
func (s *Store) Incidents() []incidents.Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]incidents.Incident, 0, len(s.d.incidents))
	for _, id := range slices.Sorted(maps.Keys(s.d.incidents)) {
		out = append(out, cloneIncident(s.d.incidents[id]))
	}
	return out
}

// data is everything the store holds. Elements are values; any slice inside
// an element is replaced, never appended to in place, so a shallow copy of the
// containers is a safe transaction snapshot.
type data struct {
	ids        map[string]int64
	incidents  map[int64]incidents.Incident
	grouping   map[int64]bool
	alerts     []incidents.Alert
	events     []incidents.Event
	outbox     []outbox.Item
	outages    []outbox.Outage
	halts      []incidents.Halt
	approvals  []approval
	flags      map[[2]string]incidents.KillFlag
	audit      []incidents.AuditEntry
	checklists map[int64]incidents.Checklist
	answers    []incidents.PostmortemAnswer
	docs       map[int64]incidents.PostmortemDoc
	drills     []incidents.DrillResult
	remembered map[string]time.Time
}

func newData() *data {
	return &data{
		ids:        map[string]int64{},
		incidents:  map[int64]incidents.Incident{},
		grouping:   map[int64]bool{},
		flags:      map[[2]string]incidents.KillFlag{},
		checklists: map[int64]incidents.Checklist{},
		docs:       map[int64]incidents.PostmortemDoc{},
		remembered: map[string]time.Time{},
	}
}

func (d *data) clone() *data {
	return &data{
		ids:        maps.Clone(d.ids),
		incidents:  maps.Clone(d.incidents),
		grouping:   maps.Clone(d.grouping),
		alerts:     slices.Clone(d.alerts),
		events:     slices.Clone(d.events),
		outbox:     slices.Clone(d.outbox),
		outages:    slices.Clone(d.outages),
		halts:      slices.Clone(d.halts),
		approvals:  slices.Clone(d.approvals),
		flags:      maps.Clone(d.flags),
		audit:      slices.Clone(d.audit),
		checklists: maps.Clone(d.checklists),
		answers:    slices.Clone(d.answers),
		docs:       maps.Clone(d.docs),
		drills:     slices.Clone(d.drills),
		remembered: maps.Clone(d.remembered),
	}
}

func (d *data) nextID(table string) int64 {
	d.ids[table]++
	return d.ids[table]
}

// tx implements incidents.Queries on a transaction's copy of the data, or,
// with d nil, directly on the store's data under its mutex (autocommit).
type tx struct {
	s *Store
	d *data
}

// begin counts the call, runs the hook and returns the data to work on and
// the function that ends the statement.
func (t *tx) begin(method string) (*data, func(), error) {
	if t.d != nil {
		t.s.calls[method]++
		if t.s.Hook != nil {
			if err := t.s.Hook(method); err != nil {
				return nil, nil, err
			}
		}
		return t.d, func() {}, nil
	}
	t.s.mu.Lock()
	t.s.calls[method]++
	if t.s.Hook != nil {
		if err := t.s.Hook(method); err != nil {
			t.s.mu.Unlock()
			return nil, nil, err
		}
	}
	return t.s.d, t.s.mu.Unlock, nil
}
