// Package halt implements incidents.Halter: the kill switches reins pulls.
//
// Each agent names one adapter in its `halt:` section (docs/config.md, halt):
//
//	flag          reins' own kill flag, polled by agents at GET /api/v1/agents/{agent}/halted
//	webhook       a signed POST to the agent's control endpoint (docs/halt-webhook.md)
//	launchdarkly  turns the agent's flag off in one environment (semantic patch)
//	unleash       disables the agent's toggle in one environment (admin API)
//	kubernetes    scales the agent's Deployment to 0 (scale subresource)
//
// Every adapter can Do (halt or resume, safe to repeat), Verify (read the
// state back: a halt is never reported as done on the word of the request
// alone) and Drill (prove credentials and reachability without halting).
// Retries belong to the caller: incidents.Service retries Do with its own
// timeout, so an adapter makes exactly one attempt per call.
package halt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Adapter is one halt mechanism.
type Adapter interface {
	// Do halts or resumes per r.Action. It must be safe to repeat.
	Do(ctx context.Context, r incidents.HaltRequest) error
	// Verify reads back whether the requested state holds.
	Verify(ctx context.Context, r incidents.HaltRequest) (bool, error)
	// Drill proves reachability and credentials and changes nothing.
	Drill(ctx context.Context, agent *ownership.Agent) error
	// SessionScoped says whether the mechanism can halt single sessions. When
	// false, a request naming sessions is refused with an *incidents.Error
	// EINVALID that says to halt the whole agent.
	SessionScoped() bool
}

// RungAdapter is an Adapter that can also restrict (a tools allow-list) or
// throttle (model calls per minute). An adapter that is not one, or says
// false, is never sent those actions: reins does the SLA's fallback instead
// and says so (docs/containment.md).
type RungAdapter interface {
	Adapter
	// Supports says whether the mechanism carries action
	// (incidents.ActionRestrict or incidents.ActionThrottle).
	Supports(action string) bool
}

// supports says whether a can do action: halt and resume are every
// adapter's, the softer rungs only a RungAdapter's that says so.
func supports(a Adapter, action string) bool {
	switch action {
	case incidents.ActionHalt, incidents.ActionResume:
		return true
	}
	ra, ok := a.(RungAdapter)
	return ok && ra.Supports(action)
}

// registration is one adapter as the registry knows it: the halt: settings
// the loader checks (ownership.AdapterSpec) and its constructor, which may
// return nil when the Config lacks what the adapter needs. Each adapter's
// file declares its own.
type registration struct {
	spec ownership.AdapterSpec
	new  func(Config) Adapter
}

// registry is every halt adapter reins knows, in the order messages list
// them. Adding an adapter is its file (type, settings, registration), its
// test, and one line here (docs/architecture.md).
var registry = []registration{
	flagAdapter,
	webhookAdapter,
	launchDarklyAdapter,
	unleashAdapter,
	kubernetesAdapter,
}

// Specs returns the halt: settings of every adapter, for the config loader
// (ownership.Options.Adapters).
func Specs() []ownership.AdapterSpec {
	specs := make([]ownership.AdapterSpec, 0, len(registry))
	for _, r := range registry {
		spec := r.spec
		spec.SessionScoped = r.new(Config{Flags: &Flags{}}.withDefaults()).SessionScoped()
		specs = append(specs, spec)
	}
	return specs
}

func adapterNames() string {
	names := make([]string, 0, len(registry))
	for _, r := range registry {
		names = append(names, r.spec.Name)
	}
	return strings.Join(names, ", ")
}

// DefaultTimeout bounds one adapter HTTP call when Config.HTTPClient is nil.
// The service usually sets a shorter deadline on the context.
const DefaultTimeout = 10 * time.Second

// Config holds what the adapters share.
type Config struct {
	Getenv     func(string) string // reads secret_env / token_env (nil: os.Getenv)
	HTTPClient *http.Client        // nil: a client with DefaultTimeout
	Flags      *Flags              // the flag adapter's state; nil disables the flag adapter
	Now        func() time.Time    // nil: time.Now
	Log        *slog.Logger        // nil: discard
}

func (c Config) withDefaults() Config {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Registry implements incidents.Halter by dispatching on agent.Halt.Adapter.
type Registry struct {
	adapters map[string]Adapter
	log      *slog.Logger
	// mirror raises and lowers reins' own kill flag after another adapter's
	// halt or resume is verified, so the flag agents poll tells the recorded
	// state whatever the adapter; nil without a flag store.
	mirror *FlagAdapter
}

var _ incidents.Halter = (*Registry)(nil)

// NewRegistry returns a Registry holding every adapter. The flag adapter is
// present only when cfg.Flags is set.
func NewRegistry(cfg Config) *Registry {
	cfg = cfg.withDefaults()
	r := &Registry{log: cfg.Log, adapters: map[string]Adapter{}}
	for _, reg := range registry {
		if a := reg.new(cfg); a != nil {
			r.adapters[reg.spec.Name] = a
		}
	}
	r.mirror, _ = r.adapters[AdapterFlag].(*FlagAdapter)
	return r
}

// Adapter returns the adapter registered under name.
func (r *Registry) Adapter(name string) (Adapter, bool) {
	a, ok := r.adapters[name]
	return a, ok
}

// Do halts or resumes through the agent's adapter.
func (r *Registry) Do(ctx context.Context, req incidents.HaltRequest) error {
	a, err := r.pick(req.Agent)
	if err != nil {
		return err
	}
	if err := checkRequest(a, req); err != nil {
		return err
	}
	if err := a.Do(ctx, req); err != nil {
		return fmt.Errorf("%s %s via %s: %w", req.Action, req.Agent.Name, req.Agent.Halt.Adapter, err)
	}
	r.log.Debug("halt adapter done", "adapter", req.Agent.Halt.Adapter, "agent", req.Agent.Name,
		"action", req.Action, "sessions", len(req.Sessions))
	return nil
}

// Verify reads back whether the requested state holds.
func (r *Registry) Verify(ctx context.Context, req incidents.HaltRequest) (bool, error) {
	a, err := r.pick(req.Agent)
	if err != nil {
		return false, err
	}
	if err := checkRequest(a, req); err != nil {
		return false, err
	}
	ok, err := a.Verify(ctx, req)
	if err != nil {
		return false, fmt.Errorf("verify %s of %s via %s: %w", req.Action, req.Agent.Name, req.Agent.Halt.Adapter, err)
	}
	if ok && r.mirror != nil && a != Adapter(r.mirror) {
		r.mirrorFlag(ctx, req)
	}
	return ok, nil
}

// mirrorFlag records a verified halt or resume in the kill flag. Its failure
// is logged, not returned: the agent's own mechanism did take effect, and
// only pollers of the flag miss it.
func (r *Registry) mirrorFlag(ctx context.Context, req incidents.HaltRequest) {
	err := r.mirror.Do(ctx, req)
	if err != nil && req.Action != incidents.ActionHalt && len(req.Sessions) > 0 {
		return // the agent stays halted as a whole: the flag is right as it is
	}
	if err != nil {
		r.log.Error("the kill flag does not show a verified "+req.Action+": agents that poll it miss it",
			"agent", req.Agent.Name, "adapter", req.Agent.Halt.Adapter, "err", err)
	}
}

// SessionScoped says whether the agent's adapter can halt single sessions;
// an adapter this registry does not hold cannot.
func (r *Registry) SessionScoped(agent *ownership.Agent) bool {
	a, err := r.pick(agent)
	return err == nil && a.SessionScoped()
}

// Supports says whether the agent's adapter can do action.
func (r *Registry) Supports(agent *ownership.Agent, action string) bool {
	a, err := r.pick(agent)
	return err == nil && supports(a, action)
}

// Drill proves the agent's halt path works without halting it.
func (r *Registry) Drill(ctx context.Context, agent *ownership.Agent) error {
	a, err := r.pick(agent)
	if err != nil {
		return err
	}
	if err := a.Drill(ctx, agent); err != nil {
		return fmt.Errorf("drill %s via %s: %w", agent.Name, agent.Halt.Adapter, err)
	}
	return nil
}

func (r *Registry) pick(agent *ownership.Agent) (Adapter, error) {
	if agent == nil {
		return nil, incidents.Errorf(incidents.EINVALID, "No agent given to halt.")
	}
	name := agent.Halt.Adapter
	if name == "" {
		return nil, incidents.Errorf(incidents.EINVALID,
			"Agent %s has no halt adapter: add a `halt:` section to its entry in reins.yaml.", agent.Name)
	}
	a, ok := r.adapters[name]
	if !ok {
		if name == AdapterFlag {
			return nil, incidents.Errorf(incidents.EUNAVAILABLE,
				"Agent %s uses the flag adapter, but this reins runs without a kill-flag store.", agent.Name)
		}
		return nil, incidents.Errorf(incidents.EINVALID,
			"Agent %s uses halt adapter %q, which reins does not know: use one of %s.",
			agent.Name, name, adapterNames())
	}
	return a, nil
}

// checkRequest refuses what no adapter can do: an unknown action, or
// sessions for a mechanism that only halts whole agents.
func checkRequest(a Adapter, r incidents.HaltRequest) error {
	if r.Agent == nil {
		return incidents.Errorf(incidents.EINVALID, "No agent given to halt.")
	}
	switch r.Action {
	case incidents.ActionHalt, incidents.ActionResume:
	case incidents.ActionRestrict, incidents.ActionThrottle:
		if !supports(a, r.Action) {
			return fmt.Errorf("the %s adapter of %s cannot %s: %w", r.Agent.Halt.Adapter, r.Agent.Name, r.Action, incidents.ErrRungUnsupported)
		}
	default:
		return incidents.Errorf(incidents.EINVALID, "Unknown halt action %q: use halt, restrict, throttle or resume.", r.Action)
	}
	if len(r.Sessions) > 0 && !a.SessionScoped() {
		return incidents.Errorf(incidents.EINVALID,
			"The %s adapter of %s cannot %s single sessions: %s the whole agent instead (leave out the sessions).",
			r.Agent.Halt.Adapter, r.Agent.Name, r.Action, r.Action)
	}
	return nil
}

// remoteError is a failure of the far side (status, timeout, wrong answer).
// It carries an *incidents.Error with a message safe for the responder and
// keeps the cause for errors.Is (context.DeadlineExceeded).
type remoteError struct {
	user   *incidents.Error
	cause  error
	status int // the far side's HTTP status, 0 when it did not answer
}

func (e *remoteError) Error() string {
	if e.cause == nil {
		return e.user.Message
	}
	return e.user.Message + ": " + e.cause.Error()
}

func (e *remoteError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.user}
	}
	return []error{e.user, e.cause}
}

func unavailable(cause error, format string, args ...any) error {
	return &remoteError{user: incidents.Errorf(incidents.EUNAVAILABLE, format, args...), cause: cause}
}

// missingEnv says which variable to set: the most common drill failure.
func missingEnv(adapter, agent, setting, name string) error {
	if name == "" {
		return incidents.Errorf(incidents.EINVALID,
			"The %s adapter of %s needs halt.%s in reins.yaml naming the environment variable that holds its credential.",
			adapter, agent, setting)
	}
	return incidents.Errorf(incidents.EINVALID,
		"The %s adapter of %s reads its credential from $%s, which is empty: set it in reins' environment.",
		adapter, agent, name)
}

func missingSetting(adapter, agent, setting string) error {
	return incidents.Errorf(incidents.EINVALID, "The %s adapter of %s needs halt.%s in reins.yaml.", adapter, agent, setting)
}

// maxAnswer caps how much of a far side's answer is read.
const maxAnswer = 1 << 20

// call sends one request and returns the body of a 2xx answer. Anything else
// is an error naming the status and a short excerpt of the answer.
func call(ctx context.Context, c *http.Client, req *http.Request, what string) ([]byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return nil, unavailable(err, "%s: no answer from %s", what, req.URL.Host)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, unavailable(err, "%s: reading the answer of %s", what, req.URL.Host)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := unavailable(nil, "%s: %s answered %s: %s", what, req.URL.Host, resp.Status, excerpt(body))
		err.(*remoteError).status = resp.StatusCode
		return nil, err
	}
	return body, nil
}

// excerpt shortens an answer to one printable line for an error message.
func excerpt(b []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if s == "" {
		return "(empty body)"
	}
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// joinURL appends path to a base URL given in reins.yaml, tolerating a
// trailing slash on the base.
func joinURL(base, path string) string { return strings.TrimRight(base, "/") + path }
