package sessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/reins-oss/reins/ownership"
)

// Store is what the session record needs from storage. A session is named
// by its agent and its ID everywhere: two agents may use the same ID.
type Store interface {
	// WriteSteps stores steps in one transaction, idempotent on (agent,
	// session, span ID): a step already stored is skipped and not counted
	// again. Each session's running totals grow by the steps written. It
	// returns the totals of the sessions touched, after the write. A
	// session that grew by a Judged step is marked, in the same
	// transaction, as to be judged by the guard (guard.Store.RecordJudgement
	// clears the mark).
	WriteSteps(ctx context.Context, steps []Step) ([]Totals, error)
	// FindSession returns agent's session id: its totals and stored steps
	// in time order, or ErrNotFound.
	FindSession(ctx context.Context, agent, id string) (Record, error)
	// FindNotable is FindSession keeping only tool calls and errors: what
	// the summary, the page, the checklist and the postmortem show.
	FindNotable(ctx context.Context, agent, id string) (Record, error)
	// SessionAgents returns the agents that have a session with ID id, sorted.
	SessionAgents(ctx context.Context, id string) ([]string, error)
	// FindSessions returns the totals of agent's sessions active (received
	// a step) at or after since, most recent first, at most limit.
	FindSessions(ctx context.Context, agent string, since time.Time, limit int) ([]Totals, error)
	// DeleteSteps removes stored steps of agent's session (the step cap);
	// totals stay.
	DeleteSteps(ctx context.Context, agent, session string, spanIDs []string) error
	// DeleteSessions removes agent's sessions last active before before,
	// except those of IDs in keep (sorted), and returns how many went.
	DeleteSessions(ctx context.Context, agent string, before time.Time, keep []string) (int, error)
	// NamedSessions returns every session an incident names.
	NamedSessions(ctx context.Context) ([]Key, error)
}

// AmbiguousError says a session ID was named without its agent and more
// than one agent has a session with that ID: reins asks which rather than
// guessing.
type AmbiguousError struct {
	ID     string
	Agents []string // sorted
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%d agents have a session %s (%s): say which agent's", len(e.Agents), e.ID,
		strings.Join(e.Agents, ", "))
}

// Puller fetches a session's steps from a trace tool (Langfuse) for an
// agent whose sessions.source is not otlp.
type Puller interface {
	Pull(ctx context.Context, agent *ownership.Agent, session string) ([]Step, error)
}

// Service records steps and reads session records.
type Service struct {
	boundMu     sync.Mutex
	boundTraces map[TraceKey]struct{} // traces this replica bound to their session (Join)

	store    Store
	registry *ownership.Holder
	puller   Puller
	now      func() time.Time
	log      *slog.Logger
	// observers see every batch of stored steps, whichever route stored
	// it (Recorded): the guard judges them, the incidents refresh their
	// summaries.
	observers []Observer
}

// Observer sees steps once stored, with their sessions' totals after the write.
type Observer func(ctx context.Context, steps []Step, totals []Totals)

// Observe adds fn to the observers of stored steps. Call it before the
// Service is used.
func (s *Service) Observe(fn Observer) {
	s.observers = append(s.observers, fn)
}

// Recorded tells every observer, in the order they were added, about steps
// stored with totals. Every route that stores steps calls it once: the
// OTLP intake after it answers for the request's steps, a pull from a trace
// tool, the sweep that joins held spans.
func (s *Service) Recorded(ctx context.Context, steps []Step, totals []Totals) {
	if len(totals) == 0 {
		return
	}
	for _, fn := range s.observers {
		fn(ctx, steps, totals)
	}
}

// New returns a Service. puller may be nil (no pull source configured).
func New(store Store, registry *ownership.Holder, puller Puller, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, registry: registry, puller: puller, now: now, log: log}
}

// Record prices steps, marks the blast-radius system of each tool call,
// applies the agent's content policy, stamps their arrival, stores them and
// enforces the step cap. Steps must name a known agent (the intake resolves
// it); each belongs to that agent's session of its ID.
func (s *Service) Record(ctx context.Context, steps []Step) ([]Totals, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	reg := s.registry.Current()
	now := s.now()
	for i := range steps {
		Enrich(reg, &steps[i])
		if steps[i].Received.IsZero() {
			steps[i].Received = now
		}
	}
	totals, err := s.store.WriteSteps(ctx, steps)
	if err != nil {
		return nil, err
	}
	for _, t := range totals {
		a := reg.Agent(t.Agent)
		max := ownership.DefaultMaxSteps
		if a != nil {
			max = a.Sessions.MaxSteps
		}
		if t.Stored > int64(max) {
			if err := s.trim(ctx, t.Key(), max); err != nil {
				return totals, err
			}
		}
	}
	return totals, nil
}

// Enrich sets a step's cost, its blast-radius system and its content per
// the registry in force.
func Enrich(reg *ownership.Registry, st *Step) {
	a := reg.Agent(st.Agent)
	st.Judged = a != nil && len(a.SLAs) > 0
	if a != nil {
		st.Agent = a.Name
		if st.Tool != "" {
			st.System = a.SystemOf(st.Tool)
		}
		if !a.Sessions.CaptureContent {
			st.Content = ""
		} else {
			st.Content = Truncate(st.Content, a.Sessions.ContentLimit)
		}
	} else {
		st.Content = ""
	}
	st.Cost, st.Priced = 0, st.Tokens() == 0
	if pr, ok := reg.PriceOf(st.Model); ok {
		st.Cost = (float64(st.InputTokens)*pr.Input + float64(st.OutputTokens)*pr.Output) / 1e6
		st.Priced = true
	}
}

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return ""
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// trim applies the step cap to one session: it keeps every tool call and
// the first and last other steps, down to nine tenths of the cap so the next
// batches do not trim again at once.
func (s *Service) trim(ctx context.Context, k Key, max int) error {
	rec, err := s.store.FindSession(ctx, k.Agent, k.ID)
	if err != nil {
		return fmt.Errorf("step cap of session %s: %w", k, err)
	}
	drop := Overflow(rec.Steps, max*9/10)
	if len(drop) == 0 {
		return nil
	}
	if err := s.store.DeleteSteps(ctx, k.Agent, k.ID, drop); err != nil {
		return fmt.Errorf("step cap of session %s: %w", k, err)
	}
	s.log.Info("session over its step cap: middle steps dropped, tool calls kept",
		"agent", k.Agent, "session", k.ID, "dropped", len(drop), "cap", max)
	return nil
}

// Overflow returns the span IDs to drop so at most keep steps remain (steps
// in time order): every tool call stays, and of the others the first half
// and the last half of what room is left.
func Overflow(steps []Step, keep int) []string {
	if len(steps) <= keep {
		return nil
	}
	var others []int
	tools := 0
	for i, st := range steps {
		if st.IsTool() {
			tools++
		} else {
			others = append(others, i)
		}
	}
	room := max(keep-tools, 2)
	if len(others) <= room {
		return nil
	}
	head := room / 2
	tail := room - head
	var drop []string
	for _, i := range others[head : len(others)-tail] {
		drop = append(drop, steps[i].SpanID)
	}
	return drop
}

// Session returns agent's session id. Agent "" means the one agent with a
// session of that ID; when several have one it returns an *AmbiguousError
// listing them. When reins has no record and an agent pulls its sessions
// from a trace tool, it asks there (agent "" tries each such agent) and
// stores what it gets.
func (s *Service) Session(ctx context.Context, agent, id string) (Record, error) {
	if why := ValidID(id); why != "" {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, why)
	}
	return s.find(ctx, agent, id, true, s.store.FindSession)
}

// Notable returns a session's totals with only its tool calls and errors.
// With pull, a session reins has no record of is asked of the agent's
// trace tool first (Session does the same); without, it never writes.
func (s *Service) Notable(ctx context.Context, agent, id string, pull bool) (Record, error) {
	return s.find(ctx, agent, id, pull, s.store.FindNotable)
}

func (s *Service) find(ctx context.Context, agent, id string, pull bool,
	read func(ctx context.Context, agent, id string) (Record, error)) (Record, error) {
	named, err := s.agentOf(ctx, agent, id)
	if err != nil {
		return Record{}, err
	}
	r, err := Record{}, ErrNotFound
	if named != "" {
		r, err = read(ctx, named, id)
	}
	if errors.Is(err, ErrNotFound) && pull {
		var pulled bool
		if pulled, err = s.Pull(ctx, agent, id); err == nil && pulled {
			if named, err = s.agentOf(ctx, agent, id); err == nil {
				r, err = read(ctx, named, id)
			}
		} else if err == nil {
			err = ErrNotFound
		}
	}
	if err != nil {
		return Record{}, err
	}
	r.Link = s.link(r.Totals.Agent, id)
	return r, nil
}

// agentOf returns the agent whose session id is meant: agent itself when
// given (its configured name for an alias), else the one agent with such a
// session, "" for none, or an *AmbiguousError when several have one.
func (s *Service) agentOf(ctx context.Context, agent, id string) (string, error) {
	if agent != "" {
		if a := s.registry.Current().Agent(agent); a != nil {
			return a.Name, nil
		}
		return agent, nil
	}
	agents, err := s.store.SessionAgents(ctx, id)
	if err != nil {
		return "", err
	}
	switch len(agents) {
	case 0:
		return "", nil
	case 1:
		return agents[0], nil
	}
	return "", &AmbiguousError{ID: id, Agents: agents}
}

// Agents returns the agents that have a session with ID id, sorted.
func (s *Service) Agents(ctx context.Context, id string) ([]string, error) {
	return s.store.SessionAgents(ctx, id)
}

// Pull fetches session id from the trace tool of agent (or of every agent
// whose source is not otlp, when agent is "") and records it. pulled says
// whether any steps were found.
func (s *Service) Pull(ctx context.Context, agent, id string) (pulled bool, err error) {
	if s.puller == nil {
		return false, nil
	}
	reg := s.registry.Current()
	var agents []*ownership.Agent
	if a := reg.Agent(agent); a != nil {
		agents = append(agents, a)
	} else if agent == "" {
		for _, name := range slices.Sorted(mapsKeys(reg.Agents)) {
			agents = append(agents, reg.Agents[name])
		}
	}
	for _, a := range agents {
		if a.Sessions.Source != ownership.SourceLangfuse {
			continue
		}
		steps, err := s.puller.Pull(ctx, a, id)
		if err != nil {
			return false, fmt.Errorf("pull session %s of %s from %s: %w", id, a.Name, a.Sessions.Source, err)
		}
		if len(steps) == 0 {
			continue
		}
		totals, err := s.Record(ctx, steps)
		if err != nil {
			return false, err
		}
		s.Recorded(ctx, steps, totals)
		return true, nil
	}
	return false, nil
}

// AgentSessions lists agent's sessions active since, most recent first.
func (s *Service) AgentSessions(ctx context.Context, agent string, since time.Time, limit int) ([]Totals, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return s.store.FindSessions(ctx, agent, since, limit)
}

// Link is the trace tool's page for a session of agent, or "".
func (s *Service) link(agent, id string) string {
	a := s.registry.Current().Agent(agent)
	if a == nil {
		return ""
	}
	return ownership.SessionLink(a.Sessions.Link, id)
}

// Link is the trace tool's page for a session of agent, or "".
func (s *Service) Link(agent, id string) string { return s.link(agent, id) }

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
