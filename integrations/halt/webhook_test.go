package halt_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func webhookAgent(url string) *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterWebhook,
		Settings: map[string]string{"url": url + "/reins/halt", "secret_env": "SUPPORT_BOT_HALT_SECRET"}}}
}

func TestWebhookConformance(t *testing.T) {
	f := halttest.NewWebhook(t, "s3cret")
	agent := webhookAgent(f.URL())
	runConformance(t, conformance{
		agent:   agent,
		fake:    f,
		halted:  func() bool { h, _ := f.State("support-bot"); return h },
		secret:  "SUPPORT_BOT_HALT_SECRET",
		adapter: func(cfg halt.Config) halt.Adapter { return halt.NewWebhook(cfg) },
	}, "s3cret")
}

func TestWebhookMessages(t *testing.T) {
	f := halttest.NewWebhook(t, "s3cret")
	a := halt.NewWebhook(halt.Config{Getenv: env{"SUPPORT_BOT_HALT_SECRET": "s3cret"}.get})
	agent := webhookAgent(f.URL())
	ctx := context.Background()
	if err := a.Drill(ctx, agent); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, request(agent, incidents.ActionHalt, "s-8812", "s-8813")); err != nil {
		t.Fatal(err)
	}
	assertVerify(t, a, request(agent, incidents.ActionHalt, "s-8812"), true)
	if err := a.Do(ctx, request(agent, incidents.ActionResume, "s-8813")); err != nil {
		t.Fatal(err)
	}
	assertVerify(t, a, request(agent, incidents.ActionResume, "s-8813"), true)
	assertVerify(t, a, request(agent, incidents.ActionHalt, "s-8812", "s-8813"), false)
	// The whole agent is not resumed while a session is still halted.
	assertVerify(t, a, request(agent, incidents.ActionResume), false)

	actor := halttest.WebhookActor{Kind: "slack", ID: "U01ALICE", Name: "alice"}
	want := []halttest.WebhookMessage{
		{Action: "drill", Agent: "support-bot", Sessions: []string{}, Reason: "kill-switch drill: change nothing",
			Actor: halttest.WebhookActor{Kind: "system", ID: "reins"}},
		{Action: "halt", Agent: "support-bot", Sessions: []string{"s-8812", "s-8813"}, Incident: 42, Reason: "looping on refunds", Actor: actor},
		{Action: "status", Agent: "support-bot", Sessions: []string{"s-8812"}, Incident: 42, Reason: "looping on refunds", Actor: actor},
		{Action: "resume", Agent: "support-bot", Sessions: []string{"s-8813"}, Incident: 42, Reason: "looping on refunds", Actor: actor},
		{Action: "status", Agent: "support-bot", Sessions: []string{"s-8813"}, Incident: 42, Reason: "looping on refunds", Actor: actor},
		{Action: "status", Agent: "support-bot", Sessions: []string{"s-8812", "s-8813"}, Incident: 42, Reason: "looping on refunds", Actor: actor},
		{Action: "status", Agent: "support-bot", Sessions: []string{}, Incident: 42, Reason: "looping on refunds", Actor: actor},
	}
	got := f.Messages()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Action != w.Action || g.Agent != w.Agent || !slices.Equal(g.Sessions, w.Sessions) ||
			g.Incident != w.Incident || g.Reason != w.Reason || g.Actor != w.Actor {
			t.Errorf("message %d = %+v, want %+v", i, g, w)
		}
	}
	for _, c := range f.Calls() {
		if c.Method != http.MethodPost || c.Path != "/reins/halt" {
			t.Errorf("call %s %s, want POST /reins/halt", c.Method, c.Path)
		}
	}
}

func TestWebhookSignature(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte(`{"action":"halt"}`)
	tests := []struct {
		name    string
		secret  string
		now     time.Time
		wantErr bool
	}{
		{"OK", "s3cret", at.Add(4 * time.Minute), false},
		{"ErrWrongSecret", "other", at, true},
		{"ErrTooOld", "s3cret", at.Add(6 * time.Minute), true},
		{"ErrFromFuture", "s3cret", at.Add(-6 * time.Minute), true},
	}
	header := halt.Sign([]byte("s3cret"), at, body)
	if !strings.HasPrefix(header, "t=1700000000,v1=") || len(header) != len("t=1700000000,v1=")+64 {
		t.Fatalf("header %q, want t=1700000000,v1=<64 hex>", header)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := halttest.VerifySignature([]byte(tt.secret), header, body, tt.now, 5*time.Minute)
			if (err != nil) != tt.wantErr {
				t.Errorf("got %v, want error %v", err, tt.wantErr)
			}
		})
	}
	if err := halttest.VerifySignature([]byte("s3cret"), header, []byte(`{"action":"resume"}`), at, 5*time.Minute); err == nil {
		t.Error("tampered body accepted")
	}
}

// TestWebhookSignatureKnownAnswer pins the signature to an independently
// computed value (openssl dgst -sha256 -hmac s3cret of "1700000000.{}").
func TestWebhookSignatureKnownAnswer(t *testing.T) {
	got := halt.Sign([]byte("s3cret"), time.Unix(1700000000, 0), []byte("{}"))
	want := "t=1700000000,v1=" + knownHMAC
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestWebhookVerifyStatusAnswers(t *testing.T) {
	tests := []struct {
		name     string
		answer   string
		r        func(*ownership.Agent) incidents.HaltRequest
		want     bool
		wantCode string
	}{
		{"HaltedWhole", `{"halted":true,"sessions":[]}`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionHalt)
		}, true, ""},
		{"SessionCoveredByWhole", `{"halted":true}`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionHalt, "s-1")
		}, true, ""},
		{"SessionMissing", `{"halted":false,"sessions":["s-2"]}`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionHalt, "s-1", "s-2")
		}, false, ""},
		{"ResumeWholeWithSessionLeft", `{"halted":false,"sessions":["s-2"]}`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionResume)
		}, false, ""},
		{"ErrNoHaltedField", `{"sessions":[]}`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionHalt)
		}, false, incidents.EUNAVAILABLE},
		{"ErrNotJSON", `OK`, func(a *ownership.Agent) incidents.HaltRequest {
			return request(a, incidents.ActionHalt)
		}, false, incidents.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var m map[string]any
				if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m["action"] != "status" {
					t.Errorf("got %v (%v), want a status request", m, err)
				}
				w.Write([]byte(tt.answer))
			}))
			defer srv.Close()
			a := halt.NewWebhook(halt.Config{Getenv: env{"SUPPORT_BOT_HALT_SECRET": "x"}.get})
			got, err := a.Verify(context.Background(), tt.r(webhookAgent(srv.URL)))
			if code := incidents.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWebhookErrNoURL(t *testing.T) {
	a := halt.NewWebhook(halt.Config{Getenv: env{"S": "x"}.get})
	agent := &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: "webhook",
		Settings: map[string]string{"secret_env": "S"}}}
	assertErr(t, a.Drill(context.Background(), agent), incidents.EINVALID, "halt.url")
}

const knownHMAC = "97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
