package incidentstest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

var (
	_ incidents.Chat      = (*Chat)(nil)
	_ incidents.Pager     = (*Pager)(nil)
	_ incidents.Halter    = (*Halter)(nil)
	_ incidents.Authority = (*Authority)(nil)
	_ incidents.Clock     = (*Clock)(nil)
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// ChatCall is one call the Chat fake received.
type ChatCall struct {
	Method    string
	Channel   string // channel ID or name, or the name asked for by CreateChannel
	ThreadTS  string
	UpdateTS  string
	People    []string               // Invite
	Link      incidents.Link         // Bookmark
	Text      string                 // SetTopic, UploadFile content
	Message   incidents.Message      // Post
	Summary   *incidents.SummaryView // PostSummary
	Checklist *incidents.ChecklistItemView
	Question  *incidents.PostmortemQuestionView
}

// Chat is a fake incidents.Chat. Each nil function field gets a default that
// succeeds: channels are C001, C002…; messages get ts 1.000001, 1.000002….
// Every call is recorded, failed or not.
type Chat struct {
	CreateChannelFunc          func(ctx context.Context, name string, private bool) (string, string, error)
	SetTopicFunc               func(ctx context.Context, channelID, topic string) error
	InviteFunc                 func(ctx context.Context, channelID string, people []string) error
	BookmarkFunc               func(ctx context.Context, channelID string, link incidents.Link) error
	PostSummaryFunc            func(ctx context.Context, channelID, updateTS string, v *incidents.SummaryView) (string, error)
	PostFunc                   func(ctx context.Context, m incidents.Message) (string, error)
	PostChecklistItemFunc      func(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.ChecklistItemView) (string, error)
	PostPostmortemQuestionFunc func(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.PostmortemQuestionView) (string, error)
	UploadFileFunc             func(ctx context.Context, channelID, threadTS, filename, title, content string) error

	mu       sync.Mutex
	calls    []ChatCall
	channels int
	ts       int
}

func (c *Chat) record(call ChatCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

func (c *Chat) nextTS(updateTS string) string {
	if updateTS != "" {
		return updateTS
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ts++
	return fmt.Sprintf("1.%06d", c.ts)
}

// Calls returns every call so far, in order.
func (c *Chat) Calls() []ChatCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// CallsTo returns the calls of one method, in order.
func (c *Chat) CallsTo(method string) []ChatCall {
	var out []ChatCall
	for _, call := range c.Calls() {
		if call.Method == method {
			out = append(out, call)
		}
	}
	return out
}

// Methods returns the method names called, in order.
func (c *Chat) Methods() []string {
	var out []string
	for _, call := range c.Calls() {
		out = append(out, call.Method)
	}
	return out
}

func (c *Chat) CreateChannel(ctx context.Context, name string, private bool) (string, string, error) {
	c.record(ChatCall{Method: "CreateChannel", Channel: name})
	if c.CreateChannelFunc != nil {
		return c.CreateChannelFunc(ctx, name, private)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.channels++
	return fmt.Sprintf("C%03d", c.channels), name, nil
}

func (c *Chat) SetTopic(ctx context.Context, channelID, topic string) error {
	c.record(ChatCall{Method: "SetTopic", Channel: channelID, Text: topic})
	if c.SetTopicFunc != nil {
		return c.SetTopicFunc(ctx, channelID, topic)
	}
	return nil
}

func (c *Chat) Invite(ctx context.Context, channelID string, people []string) error {
	c.record(ChatCall{Method: "Invite", Channel: channelID, People: slices.Clone(people)})
	if c.InviteFunc != nil {
		return c.InviteFunc(ctx, channelID, people)
	}
	return nil
}

func (c *Chat) Bookmark(ctx context.Context, channelID string, link incidents.Link) error {
	c.record(ChatCall{Method: "Bookmark", Channel: channelID, Link: link})
	if c.BookmarkFunc != nil {
		return c.BookmarkFunc(ctx, channelID, link)
	}
	return nil
}

func (c *Chat) PostSummary(ctx context.Context, channelID, updateTS string, v *incidents.SummaryView) (string, error) {
	c.record(ChatCall{Method: "PostSummary", Channel: channelID, UpdateTS: updateTS, Summary: v})
	if c.PostSummaryFunc != nil {
		return c.PostSummaryFunc(ctx, channelID, updateTS, v)
	}
	return c.nextTS(updateTS), nil
}

func (c *Chat) Post(ctx context.Context, m incidents.Message) (string, error) {
	c.record(ChatCall{Method: "Post", Channel: m.Channel, ThreadTS: m.ThreadTS, UpdateTS: m.UpdateTS, Message: m})
	if c.PostFunc != nil {
		return c.PostFunc(ctx, m)
	}
	return c.nextTS(m.UpdateTS), nil
}

func (c *Chat) PostChecklistItem(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.ChecklistItemView) (string, error) {
	c.record(ChatCall{Method: "PostChecklistItem", Channel: channelID, ThreadTS: threadTS, UpdateTS: updateTS, Checklist: v})
	if c.PostChecklistItemFunc != nil {
		return c.PostChecklistItemFunc(ctx, channelID, threadTS, updateTS, v)
	}
	return c.nextTS(updateTS), nil
}

func (c *Chat) PostPostmortemQuestion(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.PostmortemQuestionView) (string, error) {
	c.record(ChatCall{Method: "PostPostmortemQuestion", Channel: channelID, ThreadTS: threadTS, UpdateTS: updateTS, Question: v})
	if c.PostPostmortemQuestionFunc != nil {
		return c.PostPostmortemQuestionFunc(ctx, channelID, threadTS, updateTS, v)
	}
	return c.nextTS(updateTS), nil
}

func (c *Chat) UploadFile(ctx context.Context, channelID, threadTS, filename, title, content string) error {
	c.record(ChatCall{Method: "UploadFile", Channel: channelID, ThreadTS: threadTS, Text: content, Link: incidents.Link{Text: title, URL: filename}})
	if c.UploadFileFunc != nil {
		return c.UploadFileFunc(ctx, channelID, threadTS, filename, title, content)
	}
	return nil
}

// Pager is a fake incidents.Pager recording every page it is asked to send.
type Pager struct {
	SendFunc func(ctx context.Context, p incidents.Page) error

	mu    sync.Mutex
	pages []incidents.Page
}

// Send records p and calls SendFunc if set.
func (p *Pager) Send(ctx context.Context, pg incidents.Page) error {
	p.mu.Lock()
	p.pages = append(p.pages, pg)
	p.mu.Unlock()
	if p.SendFunc != nil {
		return p.SendFunc(ctx, pg)
	}
	return nil
}

// Pages returns every page asked for, in order.
func (p *Pager) Pages() []incidents.Page {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pages)
}

// Halter is a fake incidents.Halter. By default Do and Drill succeed and
// Verify confirms.
type Halter struct {
	DoFunc     func(ctx context.Context, r incidents.HaltRequest) error
	VerifyFunc func(ctx context.Context, r incidents.HaltRequest) (bool, error)
	DrillFunc  func(ctx context.Context, agent *ownership.Agent) error

	mu       sync.Mutex
	requests []incidents.HaltRequest
	verifies int
	drills   []string
}

// Do records r and calls DoFunc if set.
func (h *Halter) Do(ctx context.Context, r incidents.HaltRequest) error {
	h.mu.Lock()
	h.requests = append(h.requests, r)
	h.mu.Unlock()
	if h.DoFunc != nil {
		return h.DoFunc(ctx, r)
	}
	return nil
}

// Verify counts the read-back and calls VerifyFunc if set.
func (h *Halter) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	h.mu.Lock()
	h.verifies++
	h.mu.Unlock()
	if h.VerifyFunc != nil {
		return h.VerifyFunc(ctx, r)
	}
	return true, nil
}

// Drill records the agent and calls DrillFunc if set.
func (h *Halter) Drill(ctx context.Context, agent *ownership.Agent) error {
	h.mu.Lock()
	h.drills = append(h.drills, agent.Name)
	h.mu.Unlock()
	if h.DrillFunc != nil {
		return h.DrillFunc(ctx, agent)
	}
	return nil
}

// SessionScoped is what integrations/halt answers for the adapters of
// Registry(): the flag and webhook adapters halt single sessions, feature
// flags and Deployments only whole agents.
func (h *Halter) SessionScoped(agent *ownership.Agent) bool {
	switch agent.Halt.Adapter {
	case "flag", "webhook":
		return true
	}
	return false
}

// Requests returns every Do request, in order.
func (h *Halter) Requests() []incidents.HaltRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// Verifies returns how many read-backs were asked for.
func (h *Halter) Verifies() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.verifies
}

// Drills returns the agents drilled, in order.
func (h *Halter) Drills() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.drills)
}

// Authority is a fake incidents.Authority. By default a person is allowed
// when listed in the agent's kill_authority.users, and the holders are those
// users.
type Authority struct {
	AuthorizeFunc func(ctx context.Context, agent *ownership.Agent, person string) ownership.Decision
	HoldersFunc   func(ctx context.Context, agent *ownership.Agent) (holders, unavailable []string)
}

// Authorize decides with AuthorizeFunc, or by kill_authority.users.
func (a *Authority) Authorize(ctx context.Context, agent *ownership.Agent, person string) ownership.Decision {
	if a.AuthorizeFunc != nil {
		return a.AuthorizeFunc(ctx, agent, person)
	}
	holders := slices.Clone(agent.KillAuthority.Users)
	if slices.Contains(agent.KillAuthority.Users, person) {
		return ownership.Decision{Allowed: true, Agent: agent.Name, Person: person,
			Reason: "listed in kill_authority.users", Holders: holders}
	}
	return ownership.Decision{Agent: agent.Name, Person: person,
		Reason: "not listed in kill_authority for " + agent.Name, Holders: holders}
}

// Holders answers with HoldersFunc, or kill_authority.users.
func (a *Authority) Holders(ctx context.Context, agent *ownership.Agent) ([]string, []string) {
	if a.HoldersFunc != nil {
		return a.HoldersFunc(ctx, agent)
	}
	return slices.Clone(agent.KillAuthority.Users), nil
}

// Supports is what integrations/halt answers for the adapters of
// Registry(): every adapter halts and resumes; the flag and webhook
// adapters also restrict and throttle.
func (h *Halter) Supports(agent *ownership.Agent, action string) bool {
	switch action {
	case incidents.ActionHalt, incidents.ActionResume:
		return true
	}
	return agent.Halt.Adapter == "flag" || agent.Halt.Adapter == "webhook"
}
