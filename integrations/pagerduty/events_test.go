package pagerduty_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/integrations/pagerduty"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
)

const routingKey = "R0UT1NGKEY0000000000000000000042"

// newClient starts a fake PagerDuty and a client pointed at it.
func newClient(t *testing.T, token string) (*pagerduty.Client, *pdfake.Server) {
	t.Helper()
	fake := pdfake.New()
	t.Cleanup(fake.Close)
	return pagerduty.NewClient(pagerduty.Config{EventsURL: fake.URL, APIURL: fake.URL, APIToken: token}), fake
}

func trigger() incidents.Page {
	return incidents.Page{
		Action:     "trigger",
		RoutingKey: routingKey,
		DedupKey:   "reins-42",
		Summary:    "support-bot: token spend 5x baseline",
		Severity:   "critical",
		Source:     "reins",
		Component:  "support-bot",
		Group:      "support-ai",
		Details:    map[string]any{"incident": float64(42), "sessions": []any{"s-8812", "s-8813"}},
		Links: []incidents.Link{
			{Text: "Slack channel", URL: "https://acme.slack.com/archives/C042"},
			{Text: "Session s-8812", URL: "https://langfuse.example.com/sessions/s-8812"},
		},
	}
}

// onlyEvent returns the one event the fake received.
func onlyEvent(t *testing.T, fake *pdfake.Server) pdfake.ReceivedEvent {
	t.Helper()
	evs := fake.Events()
	if len(evs) != 1 {
		t.Fatalf("fake received %d events, want 1", len(evs))
	}
	return evs[0]
}

func TestSend(t *testing.T) {
	t.Run("OK_TriggerFieldsArriveAsSent", func(t *testing.T) {
		c, fake := newClient(t, "")
		if err := c.Send(context.Background(), trigger()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := onlyEvent(t, fake)
		if got.Status != 202 || got.RoutingKey != routingKey || got.Action != "trigger" || got.DedupKey != "reins-42" {
			t.Errorf("got status %d key %q action %q dedup %q", got.Status, got.RoutingKey, got.Action, got.DedupKey)
		}
		wantPayload := pdfake.Payload{
			Summary: "support-bot: token spend 5x baseline", Source: "reins", Severity: "critical",
			Component: "support-bot", Group: "support-ai",
			CustomDetails: map[string]any{"incident": float64(42), "sessions": []any{"s-8812", "s-8813"}},
		}
		if got.Payload == nil || !reflect.DeepEqual(*got.Payload, wantPayload) {
			t.Errorf("payload:\n got %+v\nwant %+v", got.Payload, wantPayload)
		}
		wantLinks := []pdfake.Link{
			{Href: "https://acme.slack.com/archives/C042", Text: "Slack channel"},
			{Href: "https://langfuse.example.com/sessions/s-8812", Text: "Session s-8812"},
		}
		if !reflect.DeepEqual(got.Links, wantLinks) {
			t.Errorf("links:\n got %+v\nwant %+v", got.Links, wantLinks)
		}
		if fake.Triggers("reins-42") != 1 {
			t.Errorf("Triggers(reins-42) = %d, want 1", fake.Triggers("reins-42"))
		}
	})

	t.Run("OK_SummaryTruncatedTo1024Chars", func(t *testing.T) {
		c, fake := newClient(t, "")
		p := trigger()
		p.Summary = strings.Repeat("é", 3000)
		if err := c.Send(context.Background(), p); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := onlyEvent(t, fake).Payload.Summary
		if n := utf8.RuneCountInString(got); n != 1024 || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
			t.Errorf("summary has %d chars (valid UTF-8: %v), suffix %q; want 1024 ending in …", n, utf8.ValidString(got), got[len(got)-3:])
		}
	})

	t.Run("OK_DefaultsFillRequiredPayload", func(t *testing.T) {
		c, fake := newClient(t, "")
		p := incidents.Page{Action: "trigger", RoutingKey: routingKey, DedupKey: "reins-7", Severity: "page-me-now"}
		if err := c.Send(context.Background(), p); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got := onlyEvent(t, fake).Payload
		if got.Summary != "reins incident reins-7" || got.Source != "reins" || got.Severity != "critical" || got.CustomDetails != nil {
			t.Errorf("payload = %+v, want defaults summary/source, severity critical, no details", got)
		}
	})

	for _, action := range []string{"acknowledge", "resolve"} {
		t.Run("OK_"+action+"WithoutPayload", func(t *testing.T) {
			c, fake := newClient(t, "")
			p := trigger()
			p.Action = action
			if err := c.Send(context.Background(), p); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := onlyEvent(t, fake)
			if got.Action != action || got.DedupKey != "reins-42" || got.Payload != nil || got.Links != nil {
				t.Errorf("got action %q dedup %q payload %+v links %+v", got.Action, got.DedupKey, got.Payload, got.Links)
			}
			if fake.Count(action, "reins-42") != 1 {
				t.Errorf("Count(%s) = %d, want 1", action, fake.Count(action, "reins-42"))
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	t.Run("ErrRateLimitedWithRetryAfter", func(t *testing.T) {
		c, fake := newClient(t, "")
		fake.FailNext(1, 429, "7")
		err := c.Send(context.Background(), trigger())
		var ra *outbox.RetryAfterError
		if !errors.As(err, &ra) || ra.After != 7*time.Second {
			t.Fatalf("err = %v, want RetryAfterError after 7s", err)
		}
		if fake.Triggers("reins-42") != 0 || len(fake.Events()) != 1 {
			t.Errorf("fake accepted %d triggers of %d received, want 0 of 1", fake.Triggers("reins-42"), len(fake.Events()))
		}
	})

	t.Run("ErrRateLimitedWithoutRetryAfterWaits30s", func(t *testing.T) {
		c, fake := newClient(t, "")
		fake.FailNext(1, 429, "")
		var ra *outbox.RetryAfterError
		if err := c.Send(context.Background(), trigger()); !errors.As(err, &ra) || ra.After != 30*time.Second {
			t.Fatalf("err = %v, want RetryAfterError after 30s", err)
		}
	})

	t.Run("ErrServerErrorIsRetryable", func(t *testing.T) {
		c, fake := newClient(t, "")
		fake.FailNext(1, 500, "")
		err := c.Send(context.Background(), trigger())
		assertRetryable(t, err)
		if err := c.Send(context.Background(), trigger()); err != nil {
			t.Fatalf("second Send after one failure: %v", err)
		}
		if fake.Triggers("reins-42") != 1 {
			t.Errorf("Triggers = %d, want 1", fake.Triggers("reins-42"))
		}
	})

	t.Run("ErrNetworkIsRetryable", func(t *testing.T) {
		c, fake := newClient(t, "")
		fake.Close()
		assertRetryable(t, c.Send(context.Background(), trigger()))
	})

	t.Run("ErrInvalidRoutingKeyIsPermanent", func(t *testing.T) {
		c, fake := newClient(t, "")
		fake.SetRoutingKeys("ANOTHERKEY000000000000000000000X")
		err := c.Send(context.Background(), trigger())
		var perm *outbox.PermanentError
		if !errors.As(err, &perm) {
			t.Fatalf("err = %v, want PermanentError", err)
		}
		msg := incidents.ErrorMessage(err)
		if !strings.Contains(msg, "Invalid routing key") || !strings.Contains(msg, "PAGERDUTY_ROUTING_KEY") {
			t.Errorf("message %q should carry PagerDuty's text and say what to set", msg)
		}
		if strings.Contains(err.Error(), routingKey) {
			t.Errorf("error %q leaks the routing key", err)
		}
	})

	t.Run("ErrNoRoutingKeyIsPermanentAndSendsNothing", func(t *testing.T) {
		c, fake := newClient(t, "")
		p := trigger()
		p.RoutingKey = ""
		err := c.Send(context.Background(), p)
		var perm *outbox.PermanentError
		if !errors.As(err, &perm) || !strings.Contains(incidents.ErrorMessage(err), "PAGERDUTY_ROUTING_KEY") {
			t.Fatalf("err = %v, want PermanentError naming PAGERDUTY_ROUTING_KEY", err)
		}
		if n := len(fake.Events()); n != 0 {
			t.Errorf("fake received %d events, want 0", n)
		}
	})

	t.Run("ErrInvalidPageIsPermanent", func(t *testing.T) {
		c, fake := newClient(t, "")
		for name, p := range map[string]incidents.Page{
			"unknown action":      {Action: "escalate", RoutingKey: routingKey, DedupKey: "k"},
			"resolve without key": {Action: "resolve", RoutingKey: routingKey},
			"dedup key too long":  {Action: "trigger", RoutingKey: routingKey, DedupKey: strings.Repeat("k", 256)},
		} {
			var perm *outbox.PermanentError
			if err := c.Send(context.Background(), p); !errors.As(err, &perm) {
				t.Errorf("%s: err = %v, want PermanentError", name, err)
			}
		}
		if n := len(fake.Events()); n != 0 {
			t.Errorf("fake received %d events, want 0", n)
		}
	})
}

func TestSendNeverLogsRoutingKey(t *testing.T) {
	fake := pdfake.New()
	t.Cleanup(fake.Close)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := pagerduty.NewClient(pagerduty.Config{EventsURL: fake.URL, Log: log})
	fake.FailNext(1, 400, "")
	var errs []string
	for range 2 {
		if err := c.Send(context.Background(), trigger()); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if logs.Len() == 0 || len(errs) != 1 {
		t.Fatalf("want debug logs and one error, got logs %q errors %q", logs.String(), errs)
	}
	if strings.Contains(logs.String(), routingKey) || strings.Contains(errs[0], routingKey) {
		t.Errorf("routing key leaked: logs %q error %q", logs.String(), errs[0])
	}
}

func assertRetryable(t *testing.T, err error) {
	t.Helper()
	var perm *outbox.PermanentError
	var ra *outbox.RetryAfterError
	if err == nil || errors.As(err, &perm) || errors.As(err, &ra) {
		t.Fatalf("err = %v, want a plain retryable error", err)
	}
}
