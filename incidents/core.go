package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// This file is what every use case needs: the transaction that retries a
// conflict, the outbox item queued inside it, the timeline event, the
// incident opened by hand, and the small text helpers. The use-case packages
// (incidents/intake, incidents/aftermath, incidents/halting) hold a *Core
// and call these; Service and the outbox handlers embed it.

// Core is what the use cases share: the store, the registry, the outbox, the
// clock, the log, the settings, and Slack and PagerDuty when configured (nil
// otherwise: then nothing is queued for them). It has no use case of its own.
type Core struct {
	store   Store
	reg     *ownership.Holder
	chat    Chat
	pager   Pager
	clock   Clock
	log     *slog.Logger
	cfg     Config
	outbox  *outbox.Worker
	metrics *Metrics
	// sessions is the session record, nil when reins keeps none.
	sessions SessionRecords
	auth     Authority
	halter   Halter
}

// Store is the store the use cases run their transactions on.
func (c *Core) Store() Store { return c.store }

// Now is the clock's time.
func (c *Core) Now() time.Time { return c.clock.Now() }

// Log is the service's logger.
func (c *Core) Log() *slog.Logger { return c.log }

// Config is the service's settings, defaults applied.
func (c *Core) Config() Config { return c.cfg }

// Chat is Slack, or nil when it is not configured.
func (c *Core) Chat() Chat { return c.chat }

// Pager is PagerDuty, or nil when it is not configured.
func (c *Core) Pager() Pager { return c.pager }

// Authority decides who may halt an agent and who holds kill authority now.
func (c *Core) Authority() Authority { return c.auth }

// Halter is the halt adapters.
func (c *Core) Halter() Halter { return c.halter }

// Metrics is the series the use cases count in.
func (c *Core) Metrics() *Metrics { return c.metrics }

// Enqueue adds an outbox item, due now, inside the caller's transaction. An
// item whose key is already queued is not queued again: keys are the
// idempotency of every side effect.
func (c *Core) Enqueue(ctx context.Context, q outbox.Store, incID int64, lane, kind, key string, payload any) error {
	return c.EnqueueAt(ctx, q, incID, lane, kind, key, payload, c.clock.Now())
}

// EnqueueAt is Enqueue for an item due at due.
func (c *Core) EnqueueAt(ctx context.Context, q outbox.Store, incID int64, lane, kind, key string, payload any, due time.Time) error {
	item, err := c.OutboxItem(incID, lane, kind, key, payload, due)
	if err != nil {
		return err
	}
	if _, err := q.EnqueueOutbox(ctx, item); err != nil {
		return fmt.Errorf("enqueue %s: %w", key, err)
	}
	return nil
}

// OutboxItem is the outbox row for one side effect, due at due.
func (c *Core) OutboxItem(incID int64, lane, kind, key string, payload any, due time.Time) (*outbox.Item, error) {
	if kind == KindUpdateSummary {
		lane = outbox.LaneRefresh // see outbox.LaneRefresh: a waiting refresh must not hold back thread posts
	}
	return outbox.NewItem(incID, lane, kind, key, payload, due, c.clock.Now())
}

const txAttempts = 4

// RetryTx runs fn in a transaction, again after a short pause when the store
// reports a conflict that a fresh attempt resolves (unique violation,
// serialization failure, SQLite busy, stale incident version).
func (c *Core) RetryTx(ctx context.Context, fn func(q Queries) error) error {
	var err error
	for attempt := range txAttempts {
		if err = c.store.InTx(ctx, fn); err == nil || !retryable(err) || attempt == txAttempts-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5<<attempt) * time.Millisecond):
		}
	}
	return err
}

// retryable says whether a transaction failed on a conflict. The store may
// mark its errors with a Retryable() bool method; driver errors that do not
// are recognised by their text, since incidents imports no driver.
func retryable(err error) bool {
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	if ErrorCode(err) == ECONFLICT {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unique constraint", "duplicate key", "could not serialize", "deadlock detected",
		"database is locked", "sqlite_busy"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// StartIncident finishes opening a just-created incident inside the
// transaction that created it: its PagerDuty key, the incident_opened event,
// and the outbox rows that create its channel and page its kill authority.
func (c *Core) StartIncident(ctx context.Context, q Queries, inc *Incident, ag *ownership.Agent, actor Actor, text string) error {
	events, items := c.Opening(inc, ag, actor, text)
	if err := q.UpdateIncident(ctx, inc); err != nil {
		return fmt.Errorf("set pager key of incident %d: %w", inc.ID, err)
	}
	for _, e := range events {
		if err := q.AppendEvent(ctx, e); err != nil {
			return fmt.Errorf("append %s event to incident %d: %w", e.Kind, inc.ID, err)
		}
	}
	if _, err := q.EnqueueOutbox(ctx, items...); err != nil {
		return fmt.Errorf("queue the first steps of incident %d: %w", inc.ID, err)
	}
	return nil
}

// Opening sets the PagerDuty key of a just-created incident and returns the
// rest of what opening it writes: the incident_opened event (and, when
// nobody is to be paged, a note saying why) and the outbox rows that create
// its channel and page its kill authority.
func (c *Core) Opening(inc *Incident, ag *ownership.Agent, actor Actor, text string) ([]*Event, []*outbox.Item) {
	inc.PagerDutyKey = PagerKey(inc.ID)
	now := c.clock.Now()
	data := map[string]any{"agent": inc.Agent, "source": inc.Source, "severity": inc.Severity, "unowned": inc.Unowned}
	opened := NewEvent(inc.ID, now, EventIncidentOpened, actor, text, data)
	item := func(lane, kind string) *outbox.Item {
		it, _ := outbox.NewItem(inc.ID, lane, kind, fmt.Sprintf("inc-%d/%s", inc.ID, kind), nil, now, now) // nil payload: no error
		return it
	}
	var items []*outbox.Item
	if c.chat != nil {
		for _, kind := range []string{KindCreateChannel, KindPostSummary, KindSetTopic, KindInvite, KindBookmark, KindAnnounce} {
			items = append(items, item(outbox.LaneChat, kind))
		}
	}
	events := []*Event{opened}
	if why := nobodyPaged(c.pager, c.cfg.DefaultRoutingKey, inc, ag); why != "" {
		events = append(events, NewEvent(inc.ID, now, EventNote, System, "Nobody was paged: "+why,
			map[string]any{"paged": false, "reason": why}))
	} else {
		items = append(items, item(outbox.LaneUrgent, KindPage))
	}
	return events, items
}

// nobodyPaged says why opening inc pages nobody, or "" when it pages.
func nobodyPaged(pager Pager, defaultKey string, inc *Incident, ag *ownership.Agent) string {
	switch {
	case pager == nil:
		return "PagerDuty is not configured in this reins."
	case ag != nil || defaultKey != "":
		return ""
	}
	switch kind, _ := Collector(inc.Agent); kind {
	case "unrouted":
		return "the agents of these alerts are not in reins.yaml, so no team's routing key applies, and " +
			"PAGERDUTY_ROUTING_KEY is not set. Add the agents to reins.yaml, or set PAGERDUTY_ROUTING_KEY."
	case "overflow":
		return "overflow incidents page PAGERDUTY_ROUTING_KEY, which is not set."
	}
	return inc.Agent + " is not in reins.yaml and PAGERDUTY_ROUTING_KEY is not set."
}

// OpenManual opens an incident nobody's alert opened (declare, halt), or
// returns the agent's open incident.
func (c *Core) OpenManual(ctx context.Context, q Queries, ag *ownership.Agent, actor Actor, title, text string) (*Incident, bool, error) {
	now := c.clock.Now()
	inc := &Incident{Agent: ag.Name, Title: Clip(title, MaxTitle), Severity: SeverityError, Source: "manual",
		CreatedAt: now, StartedAt: now, LastAlertAt: now}
	created, err := q.OpenIncident(ctx, inc)
	if err != nil || !created {
		return inc, false, err
	}
	return inc, true, c.StartIncident(ctx, q, inc, ag, actor, text)
}

// PagerKey is the PagerDuty dedup key of incident id.
func PagerKey(id int64) string { return fmt.Sprintf("reins-%d", id) }

// AppendEvent appends a timeline event to incident incID inside the
// caller's transaction.
func AppendEvent(ctx context.Context, q TimelineStore, incID int64, at time.Time, kind EventKind, actor Actor, text string, data any) error {
	e := NewEvent(incID, at, kind, actor, text, data)
	if err := q.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("append %s event to incident %d: %w", kind, incID, err)
	}
	return nil
}

// NewEvent is a timeline event with data encoded as JSON.
func NewEvent(incID int64, at time.Time, kind EventKind, actor Actor, text string, data any) *Event {
	return &Event{IncidentID: incID, At: at, Kind: kind, Actor: actor, Text: text, Data: JSONData(data)}
}

// JSONData encodes an event's data; nil is an empty object.
func JSONData(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage(`{}`)
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own maps and structs get here: a failure is a programming error,
		// not worth failing an intake over.
		return json.RawMessage(`{}`)
	}
	return b
}

// Clip trims s and shortens it to n runes, ending in an ellipsis.
func Clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// FirstNonEmpty returns the first value that is not blank.
func FirstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// WithChannel loads the item's incident; ok is false when the incident has
// no channel, which for cosmetic steps means create_channel was given up on
// (they are queued behind it) and was reported then.
func (c *Core) WithChannel(ctx context.Context, it *outbox.Item) (inc *Incident, ok bool, err error) {
	if c.chat == nil {
		return nil, false, errNoChat
	}
	inc, err = c.store.FindIncident(ctx, it.IncidentID)
	if err != nil {
		return nil, false, fmt.Errorf("load incident %d: %w", it.IncidentID, err)
	}
	if inc.SlackChannelID == "" {
		c.log.Warn("skipping Slack step: incident has no channel", "key", it.Key)
		return inc, false, nil
	}
	return inc, true, nil
}

// UpdateIncident changes an incident in a transaction of its own: fn gets
// the current row and says whether to write it back.
func (c *Core) UpdateIncident(ctx context.Context, id int64, fn func(q Queries, inc *Incident) (bool, error)) error {
	return c.RetryTx(ctx, func(q Queries) error {
		inc, err := q.FindIncident(ctx, id)
		if err != nil {
			return fmt.Errorf("load incident %d: %w", id, err)
		}
		changed, err := fn(q, inc)
		if err != nil || !changed {
			return err
		}
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return fmt.Errorf("update incident %d: %w", id, err)
		}
		return nil
	})
}

// IncidentLink is the link to incident id in the web view.
func (c *Core) IncidentLink(id int64) Link {
	return Link{Text: fmt.Sprintf("Incident #%d in reins", id),
		URL: fmt.Sprintf("%s/incidents/%d", strings.TrimRight(c.cfg.PublicURL, "/"), id)}
}

// ChannelLink is the Slack link to the incident's channel.
func ChannelLink(inc *Incident) Link {
	return Link{Text: "#" + inc.SlackChannelName, URL: "https://slack.com/app_redirect?channel=" + url.QueryEscape(inc.SlackChannelID)}
}

// Dedupe drops blank and repeated values, keeping the first of each in order.
func Dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0:0]
	for _, v := range list {
		if v = strings.TrimSpace(v); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Slug lowercases s and turns every run of other characters into one '-'.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
	}
	return b.String()
}

// ActorLabel names an actor for people: its name when known.
func ActorLabel(a Actor) string {
	if a.Name != "" {
		return a.Name
	}
	return a.String()
}

// IncidentOpened counts an incident opened and logs it (one INFO line per
// incident is the server log's contract), whatever opened it: intake, a
// declaration, a halt or a policy.
func (c *Core) IncidentOpened(id int64, agent string, owned bool, attrs ...any) {
	c.metrics.incidentsOpened.WithLabelValues(strconv.FormatBool(owned)).Inc()
	c.log.Info("incident opened", append([]any{"incident", id, "agent", agent}, attrs...)...)
}

// Registry returns the ownership registry in force, or an empty one before
// any was loaded.
func (c *Core) Registry() *ownership.Registry {
	if c.reg != nil {
		if r := c.reg.Current(); r != nil {
			return r
		}
	}
	return &ownership.Registry{}
}

// LookupAgent finds an agent by name or alias; an unknown name gets an
// ENOTFOUND whose message names the closest agents.
func (c *Core) LookupAgent(name string) (*ownership.Agent, error) {
	reg := c.Registry()
	if ag := FindAgent(reg, name); ag != nil {
		return ag, nil
	}
	if len(reg.Agents) == 0 {
		return nil, Errorf(ENOTFOUND, "No agent named %q: no agents are configured. Add them to reins.yaml.", name)
	}
	if near := reg.Suggest(name, 3); len(near) > 0 {
		return nil, Errorf(ENOTFOUND, "No agent named %q. Did you mean %s?", name, strings.Join(near, ", "))
	}
	return nil, Errorf(ENOTFOUND, "No agent named %q. Known agents: %s.", name,
		strings.Join(reg.Names(), ", "))
}

// FindAgent resolves a name or alias, ignoring case; nil when unknown.
func FindAgent(reg *ownership.Registry, name string) *ownership.Agent {
	return reg.Agent(strings.TrimSpace(name))
}

// Outbox is the worker that delivers what the use cases queue: run it per
// lane (Run), or pass over a lane once (DeliverDue) in tests.
func (c *Core) Outbox() *outbox.Worker { return c.outbox }

// Kick wakes the delivery workers after a commit that queued items.
func (c *Core) Kick() { c.outbox.Kick() }

// MaxTitle bounds an incident's title however long the alert's.
const MaxTitle = 200

// SummaryDebounce is the width of the buckets that debounce summary updates:
// at most one update_summary per incident per bucket, due at the bucket's end
// so it shows every alert the bucket received.
const SummaryDebounce = 5 * time.Second

// EnqueueOnce queues a chat item and says whether this call queued it.
func (c *Core) EnqueueOnce(ctx context.Context, q outbox.Store, incID int64, kind, key string, payload any) (bool, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return false, fmt.Errorf("encode %s payload for %s: %w", kind, key, err)
	}
	now := c.clock.Now()
	item := &outbox.Item{IncidentID: incID, Lane: outbox.LaneChat, Kind: kind, Key: key, Payload: raw,
		State: outbox.Pending, NextAttemptAt: now, CreatedAt: now}
	queued, err := q.EnqueueOutbox(ctx, item)
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", key, err)
	}
	return queued == 1, nil
}

// SessionRecordsOf loads the records of the sessions inc names. The record
// is context, not the incident: a failure is logged and the views go on
// without it. Callers inside a transaction pass pull false: a pull from a
// trace tool writes, and SQLite has one writer.
func (c *Core) SessionRecordsOf(ctx context.Context, inc *Incident, pull bool) []sessions.Record {
	if c.sessions == nil || inc == nil {
		return nil
	}
	var out []sessions.Record
	for i, id := range inc.Sessions {
		if i == maxIncidentSessions {
			break
		}
		rec, err := c.sessions.Notable(ctx, inc.Agent, id, pull)
		if err != nil {
			if !errors.Is(err, sessions.ErrNotFound) {
				c.log.Warn("load session record", "incident", inc.ID, "session", id, "err", err)
			}
			continue
		}
		out = append(out, rec)
	}
	return out
}

// HowToEach is HowTo for commands whose words differ between Slack and the
// shell: `/agent checklist` in the incident's channel, `reins checklist 42`.
func (c *Core) HowToEach(slash, cli string) string {
	if c.chat == nil {
		return "`reins " + cli + "`"
	}
	return "`/agent " + slash + "` in Slack or `reins " + cli + "` on the reins host"
}

// Mentionable keeps the Slack user and user-group IDs: e-mail addresses
// cannot be mentioned.
func Mentionable(lists ...[]string) []string {
	var out []string
	for _, list := range lists {
		for _, p := range list {
			if len(p) > 1 && strings.ContainsRune("UWS", rune(p[0])) && !strings.Contains(p, "@") {
				out = append(out, p)
			}
		}
	}
	return Dedupe(out)
}
