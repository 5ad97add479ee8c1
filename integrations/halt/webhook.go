package halt

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// SignatureHeader carries the webhook signature: t=<unix>,v1=<hex HMAC-SHA256
// of "<t>.<body>">. docs/halt-webhook.md shows how receivers check it.
const SignatureHeader = "Reins-Signature"

// Webhook actions beyond incidents.ActionHalt and ActionResume.
const (
	WebhookStatus = "status" // answer {"halted":bool,"sessions":[…],"mode":…,"contained":{…}}, change nothing
	WebhookDrill  = "drill"  // answer 2xx, change nothing
)

// WebhookMessage is the body reins POSTs to an agent's control endpoint.
type WebhookMessage struct {
	Action   string          `json:"action"` // halt | restrict | throttle | resume | status | drill
	Agent    string          `json:"agent"`
	Sessions []string        `json:"sessions"`        // empty: the whole agent
	Allow    []string        `json:"allow,omitempty"` // restrict: the tool globs still allowed
	Rate     int             `json:"rate,omitempty"`  // throttle: model calls per minute
	Incident int64           `json:"incident"`        // 0 when none
	Reason   string          `json:"reason"`
	Actor    incidents.Actor `json:"actor"`
}

// WebhookState is the control endpoint's answer to a status request: whether
// the whole agent is halted, and which sessions are halted on their own.
//
// An endpoint that does the softer rungs also reports the agent-wide mode
// (with allow or rate) and each session contained on its own; one that only
// halts may leave them out, and answers 501 to restrict and throttle.
type WebhookState struct {
	Halted    *bool                  `json:"halted"`
	Sessions  []string               `json:"sessions"`
	Mode      string                 `json:"mode,omitempty"`
	Allow     []string               `json:"allow,omitempty"`
	Rate      int                    `json:"rate,omitempty"`
	Contained map[string]WebhookRung `json:"contained,omitempty"`
}

// WebhookRung is one session's own containment in a status answer.
type WebhookRung struct {
	Mode  string   `json:"mode"`
	Allow []string `json:"allow,omitempty"`
	Rate  int      `json:"rate,omitempty"`
}

// of is the containment the state reports for session ("": the agent's own).
func (st *WebhookState) of(session string) incidents.Containment {
	if session != "" {
		if r, ok := st.Contained[session]; ok {
			return incidents.Containment{Mode: r.Mode, Allow: r.Allow, Rate: r.Rate}
		}
		if slices.Contains(st.Sessions, session) {
			return incidents.Containment{Mode: incidents.ModeHalted}
		}
		return incidents.Running
	}
	if *st.Halted {
		return incidents.Containment{Mode: incidents.ModeHalted}
	}
	if st.Mode == "" {
		return incidents.Running
	}
	return incidents.Containment{Mode: st.Mode, Allow: st.Allow, Rate: st.Rate}
}

// Sign returns the Reins-Signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// AdapterWebhook is the webhook adapter's name in halt.adapter.
const AdapterWebhook = "webhook"

// webhookAdapter is the webhook adapter's registry entry: its halt: settings
// (docs/config.md, halt) and its constructor.
var webhookAdapter = registration{
	spec: ownership.AdapterSpec{Name: AdapterWebhook, Settings: []ownership.SettingSpec{
		{Key: "url", Kind: ownership.SettingURL, Required: true, Help: "the endpoint reins calls"},
		{Key: "secret_env", Kind: ownership.SettingEnv, Required: true, Help: "the environment variable holding the HMAC signing secret"},
	}},
	new: func(cfg Config) Adapter { return NewWebhook(cfg) },
}

// Webhook is the `webhook` adapter: signed POSTs to the agent's own control
// endpoint, which can halt single sessions.
type Webhook struct {
	getenv func(string) string
	client *http.Client
	now    func() time.Time
}

var _ Adapter = (*Webhook)(nil)

// NewWebhook returns the webhook adapter.
func NewWebhook(cfg Config) *Webhook {
	cfg = cfg.withDefaults()
	return &Webhook{getenv: cfg.Getenv, client: cfg.HTTPClient, now: cfg.Now}
}

// SessionScoped is true: the control endpoint receives the sessions.
func (a *Webhook) SessionScoped() bool { return true }

// Supports is true for restrict and throttle: the protocol carries them. An
// endpoint that does not implement one answers 501, which Do reports as
// incidents.ErrRungUnsupported.
func (a *Webhook) Supports(action string) bool {
	return action == incidents.ActionRestrict || action == incidents.ActionThrottle
}

var _ RungAdapter = (*Webhook)(nil)

// Do sends halt or resume. The endpoint must treat a repeat as a no-op.
func (a *Webhook) Do(ctx context.Context, r incidents.HaltRequest) error {
	if err := checkRequest(a, r); err != nil {
		return err
	}
	_, err := a.post(ctx, r.Agent, a.message(r, r.Action))
	if r.Action != incidents.ActionHalt && r.Action != incidents.ActionResume && notImplemented(err) {
		return fmt.Errorf("the control endpoint of %s answered that it cannot %s: %w", r.Agent.Name, r.Action, incidents.ErrRungUnsupported)
	}
	return err
}

// notImplemented says whether err is the far side's 501 Not Implemented.
func notImplemented(err error) bool {
	var re *remoteError
	return errors.As(err, &re) && re.status == http.StatusNotImplemented
}

// Verify asks the endpoint for its state and compares it with the request.
// Resuming the whole agent must leave no session halted either.
func (a *Webhook) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	if err := checkRequest(a, r); err != nil {
		return false, err
	}
	body, err := a.post(ctx, r.Agent, a.message(r, WebhookStatus))
	if err != nil {
		return false, err
	}
	var st WebhookState
	if err := json.Unmarshal(body, &st); err != nil || st.Halted == nil {
		return false, unavailable(err, "Status answer of %s's control endpoint is not {\"halted\":bool,\"sessions\":[…]}: %s",
			r.Agent.Name, excerpt(body))
	}
	want := requested(r)
	if len(r.Sessions) == 0 {
		if !st.of("").Equal(want) {
			return false, nil
		}
		return !want.IsRunning() || (len(st.Sessions) == 0 && len(st.Contained) == 0), nil
	}
	for _, s := range r.Sessions {
		got := st.of(s)
		if want.Mode == incidents.ModeHalted && *st.Halted {
			got = want // halted as a whole: the session is stopped too
		}
		if !got.Equal(want) {
			return false, nil
		}
	}
	return true, nil
}

// Drill sends a signed drill message: it proves the URL, the secret and the
// endpoint's signature check, and the endpoint changes nothing.
func (a *Webhook) Drill(ctx context.Context, agent *ownership.Agent) error {
	m := WebhookMessage{Action: WebhookDrill, Agent: agent.Name, Sessions: []string{},
		Reason: "kill-switch drill: change nothing", Actor: incidents.System}
	_, err := a.post(ctx, agent, m)
	return err
}

func (a *Webhook) message(r incidents.HaltRequest, action string) WebhookMessage {
	sessions := r.Sessions
	if sessions == nil {
		sessions = []string{}
	}
	m := WebhookMessage{Action: action, Agent: r.Agent.Name, Sessions: sessions,
		Incident: r.IncidentID, Reason: r.Reason, Actor: r.Actor}
	if action == r.Action { // status asks about the state, it sets nothing
		c := requested(r)
		m.Allow, m.Rate = c.Allow, c.Rate
	}
	return m
}

func (a *Webhook) post(ctx context.Context, agent *ownership.Agent, m WebhookMessage) ([]byte, error) {
	spec := agent.Halt
	if spec.Setting("url") == "" {
		return nil, missingSetting(AdapterWebhook, agent.Name, "url")
	}
	secret := ""
	if spec.Setting("secret_env") != "" {
		secret = a.getenv(spec.Setting("secret_env"))
	}
	if secret == "" {
		return nil, missingEnv(AdapterWebhook, agent.Name, "secret_env", spec.Setting("secret_env"))
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, spec.Setting("url"), bytes.NewReader(body))
	if err != nil {
		return nil, incidents.Errorf(incidents.EINVALID, "The halt.url of %s is not a valid URL: %v", agent.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reins")
	req.Header.Set(SignatureHeader, Sign([]byte(secret), a.now(), body))
	return call(ctx, a.client, req, m.Action+" webhook of "+agent.Name)
}
