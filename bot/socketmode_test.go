package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reins-oss/reins/incidents"
)

// socketServer is a Socket Mode endpoint: it says hello, sends envelopes and
// hands back the acks it receives.
type socketServer struct {
	send chan any
	acks chan map[string]any
}

func newSocketServer(t *testing.T) (*socketServer, string) {
	t.Helper()
	ss := &socketServer{send: make(chan any), acks: make(chan map[string]any, 10)}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer conn.Close()
		if err := conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1}); err != nil {
			return
		}
		go func() {
			for {
				var ack map[string]any
				if err := conn.ReadJSON(&ack); err != nil {
					return
				}
				ss.acks <- ack
			}
		}()
		for {
			select {
			case msg := <-ss.send:
				if err := conn.WriteJSON(msg); err != nil {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return ss, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func (ss *socketServer) envelope(t *testing.T, id, typ string, payload any, retry int) map[string]any {
	t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ss.send <- map[string]any{"envelope_id": id, "type": typ, "payload": json.RawMessage(raw),
		"accepts_response_payload": true, "retry_attempt": retry}:
	case <-time.After(5 * time.Second):
		t.Fatalf("socket client not connected: envelope %s not sent", id)
	}
	select {
	case ack := <-ss.acks:
		if ack["envelope_id"] != id {
			t.Fatalf("ack = %v, want envelope %s", ack, id)
		}
		return ack
	case <-time.After(5 * time.Second):
		t.Fatalf("no ack for envelope %s", id)
	}
	return nil
}

func TestSocketMode(t *testing.T) {
	statusCalled := make(chan string, 1)
	svc := &fakeService{StatusFn: func(agent string) ([]incidents.AgentStatus, error) {
		statusCalled <- agent
		return nil, nil
	}}
	hs := newHarness(t, svc)
	ss, wsURL := newSocketServer(t)
	hs.slack.SetSocketURL(wsURL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hs.h.RunSocketMode(ctx, hs.slack.Client(), "xapp-1-test") }()

	t.Run("SlashCommand", func(t *testing.T) {
		ss.envelope(t, "env-1", "slash_commands", map[string]any{"command": "/agent", "text": "status support-bot",
			"user_id": "U01ALICE", "channel_id": "C0GENERAL", "response_url": hs.slack.ResponseURL()}, 0)
		select {
		case got := <-statusCalled:
			if got != "support-bot" {
				t.Fatalf("Status(%q), want support-bot", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Status not called")
		}
	})
	t.Run("RedeliveredEnvelopeDropped", func(t *testing.T) {
		ss.envelope(t, "env-1", "slash_commands", map[string]any{"command": "/agent", "text": "status support-bot",
			"user_id": "U01ALICE", "channel_id": "C0GENERAL", "response_url": hs.slack.ResponseURL()}, 1)
		hs.h.Wait()
		select {
		case <-statusCalled:
			t.Fatal("a redelivered envelope ran its command again")
		default:
		}
	})
	t.Run("HelpInAck", func(t *testing.T) {
		ack := ss.envelope(t, "env-2", "slash_commands", map[string]any{"command": "/agent", "text": "help", "user_id": "U01ALICE"}, 0)
		payload, _ := ack["payload"].(map[string]any)
		if payload["response_type"] != "ephemeral" || !strings.Contains(payload["text"].(string), "/agent kill") {
			t.Fatalf("ack payload = %v, want the usage", ack["payload"])
		}
	})
	t.Run("ViewSubmissionErrors", func(t *testing.T) {
		ack := ss.envelope(t, "env-3", "interactive", submit("U01ALICE", CallbackHaltSession, "42|support-bot", nil), 0)
		payload, _ := ack["payload"].(map[string]any)
		if payload["response_action"] != "errors" {
			t.Fatalf("ack payload = %v, want modal errors", ack["payload"])
		}
	})
	t.Run("EventRetryIgnored", func(t *testing.T) {
		ss.envelope(t, "env-4", "events_api", map[string]any{"type": "event_callback", "event_id": "Ev9",
			"event": map[string]any{"type": "app_mention", "user": "U01ALICE", "channel": "C0GENERAL", "ts": "9.9"}}, 1)
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunSocketMode = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunSocketMode did not return after cancel")
	}
	hs.h.Wait()
	if msgs := hs.slack.Messages("C0GENERAL"); len(msgs) != 0 {
		t.Fatalf("messages = %+v, want none for a retried event", msgs)
	}
	if calls := hs.slack.Calls("apps.connections.open"); len(calls) == 0 {
		t.Fatal("apps.connections.open not called")
	}
}
