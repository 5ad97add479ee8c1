package halt

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// FlagStore persists kill flags. Implemented by incidents/sqlstore.
type FlagStore interface {
	// SetKillFlag upserts the flag for (Agent, Session).
	SetKillFlag(ctx context.Context, f incidents.KillFlag) error
	KillFlags(ctx context.Context) ([]incidents.KillFlag, error)
}

// Flags is reins' own kill flag: persisted in the store, served from memory.
//
// Readers (the polling handler, Halted) load an immutable snapshot through an
// atomic pointer and never take a lock, so thousands of agent workers polling
// cannot slow a halt down. Writers (Set, Load) are serialised by a mutex held
// across the store call: a Load that read the store before a Set committed
// cannot then overwrite that Set in memory.
type Flags struct {
	store FlagStore
	now   func() time.Time
	mu    sync.Mutex
	state atomic.Pointer[flagState]
}

// NewFlags returns Flags on store with nothing halted until Load or Set.
func NewFlags(store FlagStore, now func() time.Time) *Flags {
	if now == nil {
		now = time.Now
	}
	f := &Flags{store: store, now: now}
	f.state.Store(buildState(nil))
	return f
}

// Load replaces the in-memory flags with the store's. cmd calls it at start
// and every second, so flags set through another replica land here too.
func (f *Flags) Load(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	flags, err := f.store.KillFlags(ctx)
	if err != nil {
		return fmt.Errorf("load kill flags: %w", err)
	}
	f.state.Store(buildState(flags))
	return nil
}

// Set stores fl, then makes it visible in memory: a flag agents can see is
// always one the store holds. A zero UpdatedAt is set to now.
func (f *Flags) Set(ctx context.Context, fl incidents.KillFlag) error {
	if fl.Agent == "" {
		return incidents.Errorf(incidents.EINVALID, "A kill flag needs an agent.")
	}
	if fl.UpdatedAt.IsZero() {
		fl.UpdatedAt = f.now()
	}
	fl.UpdatedAt = fl.UpdatedAt.UTC()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.store.SetKillFlag(ctx, fl); err != nil {
		return fmt.Errorf("set kill flag for %s session %q: %w", fl.Agent, fl.Session, err)
	}
	cur := f.state.Load()
	flags := make([]incidents.KillFlag, 0, len(cur.all)+1)
	for k, v := range cur.all {
		if k != (flagKey{fl.Agent, fl.Session}) {
			flags = append(flags, v)
		}
	}
	f.state.Store(buildState(append(flags, fl)))
	return nil
}

// Halted says whether agent, or its session, is halted: the agent-wide flag
// wins, else the session's own. The flag returned is the one that halts it.
func (f *Flags) Halted(agent, session string) (halted bool, flag incidents.KillFlag) {
	e := f.state.Load().lookup(agent, session)
	return e.flag.Containment().Mode == incidents.ModeHalted, e.flag
}

// Mode is the containment that applies to agent, or its session: the
// stronger of the agent-wide flag and the session's own.
func (f *Flags) Mode(agent, session string) (incidents.Containment, incidents.KillFlag) {
	e := f.state.Load().lookup(agent, session)
	return e.flag.Containment(), e.flag
}

// own is the flag set for exactly (agent, session), running when none.
func (f *Flags) own(agent, session string) incidents.Containment {
	fl, ok := f.state.Load().all[flagKey{agent, session}]
	if !ok {
		return incidents.Running
	}
	return fl.Containment()
}

// Snapshot returns every flag in memory, halted or lifted, ordered by agent
// then session.
func (f *Flags) Snapshot() []incidents.KillFlag {
	st := f.state.Load()
	out := make([]incidents.KillFlag, 0, len(st.all))
	for _, v := range st.all {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Session < out[j].Session
	})
	return out
}

type flagKey struct{ agent, session string }

// flagState is one immutable snapshot. contained indexes only the flags
// that contain something (any mode but running), each with its answer
// precomputed, so serving a poll is a map look-up and a copy.
type flagState struct {
	all       map[flagKey]incidents.KillFlag
	contained map[string]*agentFlags
}

type agentFlags struct {
	whole    *flagEntry
	sessions map[string]*flagEntry
}

// flagEntry is a flag with the part of the poll answer that depends only on
// it (everything after "session") and its ETag header value.
type flagEntry struct {
	flag incidents.KillFlag
	mode incidents.Containment
	tail []byte
	etag []string
}

// notHalted answers for every agent and session without a containing flag.
var notHalted = newEntry(incidents.KillFlag{}, "")

func buildState(flags []incidents.KillFlag) *flagState {
	st := &flagState{all: make(map[flagKey]incidents.KillFlag, len(flags)), contained: map[string]*agentFlags{}}
	for _, fl := range flags {
		st.all[flagKey{fl.Agent, fl.Session}] = fl
		if fl.Containment().IsRunning() {
			continue
		}
		af := st.contained[fl.Agent]
		if af == nil {
			af = &agentFlags{sessions: map[string]*flagEntry{}}
			st.contained[fl.Agent] = af
		}
		if fl.Session == "" {
			af.whole = newEntry(fl, "agent")
		} else {
			af.sessions[fl.Session] = newEntry(fl, "session")
		}
	}
	return st
}

// lookup is the entry that applies to (agent, session): the stronger of the
// agent-wide flag and the session's own; the agent's on a tie.
func (st *flagState) lookup(agent, session string) *flagEntry {
	if len(st.contained) == 0 {
		return notHalted
	}
	af := st.contained[agent]
	if af == nil {
		return notHalted
	}
	var own *flagEntry
	if session != "" {
		own = af.sessions[session]
	}
	switch {
	case own == nil && af.whole == nil:
		return notHalted
	case own == nil:
		return af.whole
	case af.whole == nil:
		return own
	}
	if incidents.Stronger(af.whole.mode, own.mode).Mode == af.whole.mode.Mode {
		return af.whole
	}
	return own
}

func newEntry(fl incidents.KillFlag, scope string) *flagEntry {
	c := fl.Containment()
	tail := []byte(`"halted":`)
	tail = strconv.AppendBool(tail, c.Mode == incidents.ModeHalted)
	tail = append(tail, `,"mode":`...)
	tail = appendJSONString(tail, c.Mode)
	tail = append(tail, `,"allow":[`...)
	for i, g := range c.Allow {
		if i > 0 {
			tail = append(tail, ',')
		}
		tail = appendJSONString(tail, g)
	}
	tail = append(tail, `],"rate":`...)
	tail = strconv.AppendInt(tail, int64(c.Rate), 10)
	tail = append(tail, `,"reason":`...)
	tail = appendJSONString(tail, fl.Reason)
	tail = append(tail, `,"since":`...)
	if !c.IsRunning() {
		tail = append(tail, '"')
		tail = fl.UpdatedAt.UTC().AppendFormat(tail, time.RFC3339)
		tail = append(tail, '"')
	} else {
		tail = append(tail, "null"...)
	}
	tail = append(tail, `,"scope":`...)
	tail = appendJSONString(tail, scope)
	tail = append(tail, "}\n"...)
	// The URL names agent and session, so the state alone tells answers to
	// one URL apart; hashing the content keeps ETags equal across replicas.
	h := fnv.New64a()
	h.Write(tail)
	etag := `"` + strconv.FormatUint(h.Sum64(), 16) + `"`
	return &flagEntry{flag: fl, mode: c, tail: tail, etag: []string{etag}}
}

// AdapterFlag is the flag adapter's name in halt.adapter.
const AdapterFlag = "flag"

// flagAdapter is the flag adapter's registry entry: it takes no settings,
// and exists only when reins runs with a kill-flag store (Config.Flags).
var flagAdapter = registration{
	spec: ownership.AdapterSpec{Name: AdapterFlag},
	new: func(cfg Config) Adapter {
		if cfg.Flags == nil {
			return nil
		}
		return NewFlagAdapter(cfg.Flags, cfg.Now)
	},
}

// FlagAdapter is the `flag` adapter: it raises and lowers reins' own kill
// flag, which agents poll.
type FlagAdapter struct {
	flags *Flags
	now   func() time.Time
}

var _ Adapter = (*FlagAdapter)(nil)

// NewFlagAdapter returns the flag adapter on flags.
func NewFlagAdapter(flags *Flags, now func() time.Time) *FlagAdapter {
	if now == nil {
		now = time.Now
	}
	return &FlagAdapter{flags: flags, now: now}
}

// SessionScoped is true: a flag can be raised for one session.
func (a *FlagAdapter) SessionScoped() bool { return true }

// Supports is true for restrict and throttle: the flag carries the mode and
// its parameters to pollers and OFREP readers.
func (a *FlagAdapter) Supports(action string) bool {
	return action == incidents.ActionRestrict || action == incidents.ActionThrottle
}

var _ RungAdapter = (*FlagAdapter)(nil)

// Do sets the flag to the mode the action asks (agent-wide without
// sessions, else one per session) or lowers it. Resuming the whole agent
// also lowers its session flags, so `resume AGENT` leaves nothing of it
// contained.
func (a *FlagAdapter) Do(ctx context.Context, r incidents.HaltRequest) error {
	if err := checkRequest(a, r); err != nil {
		return err
	}
	c := requested(r)
	base := incidents.KillFlag{Agent: r.Agent.Name, Halted: c.Mode == incidents.ModeHalted, Mode: c.Mode,
		Allow: c.Allow, Rate: c.Rate, Reason: r.Reason, Actor: r.Actor, IncidentID: r.IncidentID, UpdatedAt: a.now()}
	sessions := r.Sessions
	resume := r.Action == incidents.ActionResume
	switch {
	case len(sessions) == 0 && resume:
		sessions = append([]string{""}, a.containedSessions(r.Agent.Name)...)
	case len(sessions) == 0:
		sessions = []string{""}
	case resume:
		if whole := a.flags.own(r.Agent.Name, ""); !whole.IsRunning() {
			return incidents.Errorf(incidents.ECONFLICT,
				"%s is %s as a whole, not session by session: resume the whole agent.", r.Agent.Name, whole.Mode)
		}
	}
	for _, s := range sessions {
		fl := base
		fl.Session = s
		if err := a.flags.Set(ctx, fl); err != nil {
			return err
		}
	}
	return nil
}

// requested is the containment r asks for.
func requested(r incidents.HaltRequest) incidents.Containment {
	c := incidents.Containment{Mode: incidents.ModeOf(r.Action)}
	switch r.Action {
	case incidents.ActionRestrict:
		c.Allow = r.Allow
	case incidents.ActionThrottle:
		c.Rate = r.Rate
	}
	return c
}

func (a *FlagAdapter) containedSessions(agent string) []string {
	var out []string
	for _, fl := range a.flags.Snapshot() {
		if fl.Agent == agent && fl.Session != "" && !fl.Containment().IsRunning() {
			out = append(out, fl.Session)
		}
	}
	return out
}

// Verify reads the flags back from memory, where pollers read them: each
// target's own flag must say what was asked.
func (a *FlagAdapter) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	if err := checkRequest(a, r); err != nil {
		return false, err
	}
	agent, want := r.Agent.Name, requested(r)
	if len(r.Sessions) == 0 {
		if !a.flags.own(agent, "").Equal(want) {
			return false, nil
		}
		return !want.IsRunning() || len(a.containedSessions(agent)) == 0, nil
	}
	for _, s := range r.Sessions {
		got := a.flags.own(agent, s)
		if r.Action == incidents.ActionHalt || r.Action == incidents.ActionResume {
			// What the session's poller sees: a halted agent halts it too.
			got, _ = a.flags.Mode(agent, s)
		}
		if !got.Equal(want) {
			return false, nil
		}
	}
	return true, nil
}

// Drill reloads the flags: it proves the store answers, and changes nothing.
func (a *FlagAdapter) Drill(ctx context.Context, agent *ownership.Agent) error {
	if err := a.flags.Load(ctx); err != nil {
		return unavailable(err, "The kill-flag store did not answer")
	}
	return nil
}
