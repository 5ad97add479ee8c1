// Package pagerduty connects reins to PagerDuty: it sends pages through the
// Events API v2 (incidents.Pager), asks the REST API who is on call for an
// escalation policy (ownership.OnCall, ownership.PagerChecker), and receives v3
// webhooks so an acknowledgement or resolve in PagerDuty reaches the incident.
//
// A v3 webhook reins acts on looks like this (trimmed):
//
//	{"event": {
//	  "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
//	  "event_type": "incident.acknowledged",
//	  "occurred_at": "2020-10-02T18:45:22.169Z",
//	  "agent": {"summary": "Tenex Engineer", "type": "user_reference"},
//	  "data": {"type": "incident", "incident_key": "reins-42", "status": "acknowledged"}}}
//
// The pdfake subpackage is an httptest fake of both APIs for tests.
package pagerduty

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Default endpoints, overridden by PAGERDUTY_EVENTS_URL and PAGERDUTY_API_URL.
const (
	DefaultEventsURL = "https://events.pagerduty.com"
	DefaultAPIURL    = "https://api.pagerduty.com"
)

// onCallPageLimit is the largest page PagerDuty's /oncalls serves; maxOnCallPages
// bounds the walk so a misbehaving server cannot keep us looping.
const (
	onCallPageLimit = 100
	maxOnCallPages  = 20
)

// Config configures a Client. Zero values take the defaults.
type Config struct {
	EventsURL  string // PAGERDUTY_EVENTS_URL, default https://events.pagerduty.com
	APIURL     string // PAGERDUTY_API_URL, default https://api.pagerduty.com
	APIToken   string // PAGERDUTY_API_TOKEN; "" disables on-call and policy look-ups
	HTTPClient *http.Client
	Log        *slog.Logger
	// AuthFailed, when set, is called each time PagerDuty refuses the
	// routing key or the API token (cmd/reins counts it in
	// reins_integration_auth_failures_total{system="pagerduty"}).
	AuthFailed func()
}

// Client talks to PagerDuty's Events API v2 and REST API.
type Client struct {
	eventsURL string
	http      *http.Client
	rest      *pagerduty.Client
	hasToken  bool
	log       *slog.Logger
	// authFailed is called when PagerDuty refuses the key or token.
	authFailed func()
}

var (
	_ incidents.Pager        = (*Client)(nil)
	_ ownership.PagerChecker = (*Client)(nil)
)

// NewClient returns a client for cfg.
func NewClient(cfg Config) *Client {
	events := strings.TrimRight(cmp.Or(cfg.EventsURL, DefaultEventsURL), "/")
	api := strings.TrimRight(cmp.Or(cfg.APIURL, DefaultAPIURL), "/")
	hc := cfg.HTTPClient
	if hc == nil {
		// A page that hangs holds an outbox lease; fail fast and let delivery retry.
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rest := pagerduty.NewClient(cfg.APIToken,
		pagerduty.WithV2EventsAPIEndpoint(events),
		pagerduty.WithAPIEndpoint(api))
	rest.HTTPClient = hc
	authFailed := cfg.AuthFailed
	if authFailed == nil {
		authFailed = func() {}
	}
	return &Client{eventsURL: events, http: hc, rest: rest, hasToken: cfg.APIToken != "", log: log,
		authFailed: authFailed}
}

// OnCallEmails returns the e-mail addresses of everyone on call now, at any
// escalation level, for an escalation policy, without duplicates.
func (c *Client) OnCallEmails(ctx context.Context, escalationPolicy string) ([]string, error) {
	if err := c.checkREST(escalationPolicy); err != nil {
		return nil, err
	}
	var emails []string
	seen := map[string]bool{}
	opts := pagerduty.ListOnCallOptions{
		EscalationPolicyIDs: []string{escalationPolicy},
		Includes:            []string{"users"},
		Earliest:            true,
		Limit:               onCallPageLimit,
	}
	for range maxOnCallPages {
		resp, err := c.rest.ListOnCallsWithContext(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list on-call for escalation policy %s: %w", escalationPolicy, c.restError(err))
		}
		for _, oc := range resp.OnCalls {
			email := strings.TrimSpace(oc.User.Email)
			if email == "" || seen[strings.ToLower(email)] {
				continue
			}
			seen[strings.ToLower(email)] = true
			emails = append(emails, email)
		}
		if !resp.More || len(resp.OnCalls) == 0 {
			break
		}
		opts.Offset += uint(len(resp.OnCalls))
	}
	return emails, nil
}

// EscalationPolicyExists says whether PagerDuty knows the escalation policy id.
func (c *Client) EscalationPolicyExists(ctx context.Context, id string) (bool, error) {
	if err := c.checkREST(id); err != nil {
		return false, err
	}
	// go-pagerduty pastes the ID into the path as is; escape it so a typo in
	// reins.yaml cannot address another resource.
	_, err := c.rest.GetEscalationPolicyWithContext(ctx, url.PathEscape(id), &pagerduty.GetEscalationPolicyOptions{})
	var apiErr pagerduty.APIError
	if errors.As(err, &apiErr) && apiErr.NotFound() {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("get escalation policy %s: %w", id, c.restError(err))
	}
	return true, nil
}

func (c *Client) checkREST(policy string) error {
	if !c.hasToken {
		return incidents.Errorf(incidents.EUNAVAILABLE,
			"PagerDuty on-call look-ups are not configured: set PAGERDUTY_API_TOKEN to a REST API token.")
	}
	if strings.TrimSpace(policy) == "" {
		return incidents.Errorf(incidents.EINVALID, "No escalation policy given: set it to a PagerDuty ID such as PABC123.")
	}
	return nil
}

// restError turns a refused token into a message that says what to fix; other
// errors pass through (they carry the status and PagerDuty's message).
func (c *Client) restError(err error) error {
	var apiErr pagerduty.APIError
	if errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden) {
		c.authFailed()
		return fmt.Errorf("%w: %w", incidents.Errorf(incidents.EUNAVAILABLE,
			"PagerDuty refused the API token (HTTP %d): check PAGERDUTY_API_TOKEN.", apiErr.StatusCode), err)
	}
	return err
}
