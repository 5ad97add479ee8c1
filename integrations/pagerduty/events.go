package pagerduty

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// Events API v2 limits and reins' answers to rate limiting.
const (
	maxSummaryChars   = 1024
	maxDedupKeyBytes  = 255
	defaultRetryAfter = 30 * time.Second // the Events API limit resets each minute
	maxRetryAfter     = 5 * time.Minute  // a page must not sleep behind a bogus header
	maxResponseBytes  = 64 << 10
	defaultSource     = "reins"
)

// v2Link is one entry of an event's links; go-pagerduty types them as any.
type v2Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Send delivers a page to the Events API v2. A 429 comes back as
// *outbox.RetryAfterError, 5xx and network failures as plain (retryable)
// errors, and anything PagerDuty refuses as incidents.Permanent.
//
// The event is go-pagerduty's V2Event, but the POST is ours: in v1.8.0
// Client.ManageEventWithContext decodes failures as the REST API's
// {"error":{…}} shape, so the Events API's top-level {"status","message",
// "errors"} (the text saying a routing key is invalid) is lost, and it drops
// the response, so a 429's Retry-After never reaches the outbox.
func (c *Client) Send(ctx context.Context, p incidents.Page) error {
	ev, err := v2Event(p)
	if err != nil {
		return outbox.Permanent(err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return outbox.Permanent(fmt.Errorf("encode page %s for %s: %w", p.Action, p.DedupKey, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.eventsURL+"/v2/enqueue", bytes.NewReader(body))
	if err != nil {
		return outbox.Permanent(fmt.Errorf("build page request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reins (go-pagerduty/"+pagerduty.Version+")")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("send page %s for %s to PagerDuty: %w", p.Action, p.DedupKey, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		c.log.DebugContext(ctx, "page sent", "action", p.Action, "dedup_key", p.DedupKey, "status", resp.StatusCode)
		return nil
	}
	return c.eventsError(p, resp.StatusCode, resp.Header.Get("Retry-After"), raw, time.Now())
}

// v2Event maps a page to an Events API v2 event. Only a trigger carries a
// payload and links: PagerDuty ignores them on acknowledge and resolve.
func v2Event(p incidents.Page) (*pagerduty.V2Event, error) {
	if strings.TrimSpace(p.RoutingKey) == "" {
		return nil, incidents.Errorf(incidents.EINVALID,
			"No PagerDuty routing key for this page: set PAGERDUTY_ROUTING_KEY, or pagerduty.routing_key_env on the agent or its team.")
	}
	switch p.Action {
	case "trigger", "acknowledge", "resolve":
	default:
		return nil, incidents.Errorf(incidents.EINVALID, "Unknown PagerDuty event action %q: use trigger, acknowledge or resolve.", p.Action)
	}
	if len(p.DedupKey) > maxDedupKeyBytes {
		return nil, incidents.Errorf(incidents.EINVALID, "PagerDuty dedup_key is %d bytes long; the limit is %d.", len(p.DedupKey), maxDedupKeyBytes)
	}
	if p.DedupKey == "" && p.Action != "trigger" {
		return nil, incidents.Errorf(incidents.EINVALID, "A PagerDuty %s needs the dedup_key of the page it follows.", p.Action)
	}
	ev := &pagerduty.V2Event{RoutingKey: p.RoutingKey, Action: p.Action, DedupKey: p.DedupKey, Client: defaultSource}
	if p.Action != "trigger" {
		return ev, nil
	}
	summary := strings.TrimSpace(p.Summary)
	if summary == "" {
		summary = "reins incident " + p.DedupKey
	}
	ev.Payload = &pagerduty.V2Payload{
		Summary:   truncate(summary, maxSummaryChars),
		Source:    cmp.Or(p.Source, defaultSource),
		Severity:  severity(p.Severity),
		Component: p.Component,
		Group:     p.Group,
	}
	if len(p.Details) > 0 {
		ev.Payload.Details = p.Details
	}
	for _, l := range p.Links {
		if l.URL != "" {
			ev.Links = append(ev.Links, v2Link{Href: l.URL, Text: l.Text})
		}
	}
	return ev, nil
}

// severity maps to the four values the Events API accepts. Anything else
// becomes critical: this page exists to wake whoever can halt an agent, and
// a silently downgraded urgency is worse than a loud one.
func severity(s string) string {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case incidents.SeverityCritical, incidents.SeverityError, incidents.SeverityWarning, incidents.SeverityInfo:
		return s
	}
	return incidents.SeverityCritical
}

// truncate shortens s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// eventsError classifies a non-2xx answer of the Events API.
func (c *Client) eventsError(p incidents.Page, status int, retryAfterHeader string, raw []byte, now time.Time) error {
	var body pagerduty.V2EventResponse
	_ = json.Unmarshal(raw, &body) // a non-JSON body still leaves the status to go on
	detail := strconv.Itoa(status)
	if body.Status != "" {
		detail += " " + body.Status
	}
	if body.Message != "" {
		detail += ": " + body.Message
	}
	if len(body.Errors) > 0 {
		detail += ": " + strings.Join(body.Errors, "; ")
	}
	// PagerDuty does not echo the key today; make sure it never reaches a log.
	detail = strings.ReplaceAll(detail, p.RoutingKey, "[routing key]")

	switch {
	case status == http.StatusTooManyRequests:
		return &outbox.RetryAfterError{
			After: retryAfter(retryAfterHeader, now),
			Err:   fmt.Errorf("PagerDuty rate-limited page %s for %s (HTTP %s)", p.Action, p.DedupKey, detail),
		}
	case status == http.StatusRequestTimeout || status >= 500 || status < 400:
		return fmt.Errorf("PagerDuty failed page %s for %s (HTTP %s)", p.Action, p.DedupKey, detail)
	}
	hint := "check the Events API URL (PAGERDUTY_EVENTS_URL) and the page's content."
	if strings.Contains(strings.ToLower(detail), "routing") || status == http.StatusBadRequest {
		if strings.Contains(strings.ToLower(detail), "routing") {
			c.authFailed()
		}
		hint = "check the routing key (pagerduty.routing_key_env of the agent or team, or PAGERDUTY_ROUTING_KEY)."
	}
	return outbox.Permanent(incidents.Errorf(incidents.EINVALID,
		"PagerDuty refused page %s for %s (HTTP %s): %s", p.Action, p.DedupKey, detail, hint))
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), falling
// back to defaultRetryAfter and bounded to [1s, maxRetryAfter].
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	d := defaultRetryAfter
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil && secs >= 0 {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, time.Second), maxRetryAfter)
}
