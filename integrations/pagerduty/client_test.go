package pagerduty_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
)

func TestOnCallEmails(t *testing.T) {
	t.Run("OK_DedupedInOrder", func(t *testing.T) {
		c, fake := newClient(t, "tok")
		fake.SetOnCall("PABC123", "ana@example.com", "bo@example.com", "Ana@example.com")
		fake.SetOnCall("POTHER1", "eve@example.com")
		got, err := c.OnCallEmails(context.Background(), "PABC123")
		if err != nil {
			t.Fatalf("OnCallEmails: %v", err)
		}
		if want := []string{"ana@example.com", "bo@example.com"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		reqs := fake.APIRequests()
		if len(reqs) != 1 || !strings.Contains(reqs[0], "escalation_policy_ids%5B%5D=PABC123") ||
			!strings.Contains(reqs[0], "include%5B%5D=users") || !strings.Contains(reqs[0], "earliest=true") {
			t.Errorf("requests = %v, want one /oncalls for PABC123 with users, earliest", reqs)
		}
	})

	t.Run("OK_WalksEveryPage", func(t *testing.T) {
		c, fake := newClient(t, "tok")
		var want []string
		for i := range 230 {
			want = append(want, fmt.Sprintf("u%03d@example.com", i))
		}
		fake.SetOnCall("PBIG", want...)
		got, err := c.OnCallEmails(context.Background(), "PBIG")
		if err != nil {
			t.Fatalf("OnCallEmails: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %d e-mails, want %d", len(got), len(want))
		}
		if n := len(fake.APIRequests()); n != 3 {
			t.Errorf("made %d requests, want 3 pages of 100", n)
		}
	})

	t.Run("OK_NoOneOnCall", func(t *testing.T) {
		c, _ := newClient(t, "tok")
		got, err := c.OnCallEmails(context.Background(), "PEMPTY")
		if err != nil || len(got) != 0 {
			t.Errorf("got %v, %v; want none, nil", got, err)
		}
	})

	t.Run("ErrNotConfigured", func(t *testing.T) {
		c, fake := newClient(t, "")
		_, err := c.OnCallEmails(context.Background(), "PABC123")
		if incidents.ErrorCode(err) != incidents.EUNAVAILABLE || !strings.Contains(incidents.ErrorMessage(err), "PAGERDUTY_API_TOKEN") {
			t.Errorf("err = %v, want unavailable naming PAGERDUTY_API_TOKEN", err)
		}
		if n := len(fake.APIRequests()); n != 0 {
			t.Errorf("made %d requests, want 0", n)
		}
	})

	t.Run("ErrTokenRefused", func(t *testing.T) {
		c, fake := newClient(t, "wrong")
		fake.RequireAPIToken("right")
		_, err := c.OnCallEmails(context.Background(), "PABC123")
		if incidents.ErrorCode(err) != incidents.EUNAVAILABLE || !strings.Contains(incidents.ErrorMessage(err), "PAGERDUTY_API_TOKEN") {
			t.Errorf("err = %v, want unavailable naming PAGERDUTY_API_TOKEN", err)
		}
	})

	t.Run("ErrServerError", func(t *testing.T) {
		c, fake := newClient(t, "tok")
		fake.FailAPINext(1, 503)
		if _, err := c.OnCallEmails(context.Background(), "PABC123"); err == nil || !strings.Contains(err.Error(), "PABC123") {
			t.Errorf("err = %v, want an error naming the policy", err)
		}
	})
}

func TestEscalationPolicyExists(t *testing.T) {
	c, fake := newClient(t, "tok")
	fake.AddEscalationPolicy("PABC123")
	fake.SetOnCall("PONCALL", "ana@example.com")
	for _, tt := range []struct {
		name, id string
		want     bool
	}{
		{"OK_Exists", "PABC123", true},
		{"OK_ExistsThroughSetOnCall", "PONCALL", true},
		{"OK_Missing", "PNOPE00", false},
		{"OK_PathIsEscaped", "../oncalls", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.EscalationPolicyExists(context.Background(), tt.id)
			if err != nil || got != tt.want {
				t.Errorf("EscalationPolicyExists(%q) = %v, %v; want %v, nil", tt.id, got, err, tt.want)
			}
		})
	}

	t.Run("ErrServerError", func(t *testing.T) {
		fake.FailAPINext(1, 500)
		if _, err := c.EscalationPolicyExists(context.Background(), "PABC123"); err == nil {
			t.Error("err = nil, want the 500")
		}
	})

	t.Run("ErrNotConfigured", func(t *testing.T) {
		c, _ := newClient(t, "")
		if _, err := c.EscalationPolicyExists(context.Background(), "PABC123"); incidents.ErrorCode(err) != incidents.EUNAVAILABLE {
			t.Errorf("err = %v, want unavailable", err)
		}
	})
}
