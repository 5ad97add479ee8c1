package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/api"
)

// halting answers every halt with the status it is given.
type halting struct {
	api.Halting
	status string
	got    incidents.HaltCommand
}

func (h *halting) Halt(_ context.Context, cmd incidents.HaltCommand) (*incidents.Halt, error) {
	h.got = cmd
	return &incidents.Halt{ID: 7, Agent: cmd.Agent, Action: cmd.Action, Status: h.status}, nil
}

func serve(t *testing.T, h *api.Handler, method, path, body string) (int, string) {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// The API is built from the use cases it is given, not from the whole
// process: a halt through it is break-glass and audited as the named actor,
// and a halt that did not take effect is never reported as done.
func TestHaltThroughTheAPI(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   int
	}{{incidents.HaltVerified, http.StatusOK}, {incidents.HaltFailed, http.StatusBadGateway}} {
		hal := &halting{status: tc.status}
		code, body := serve(t, &api.Handler{Token: "tok", Halting: hal}, http.MethodPost,
			"/api/v1/agents/support-bot/halt", `{"actor":"ops@example.com","reason":"loop"}`)
		if code != tc.want || !strings.Contains(body, `"id": 7`) {
			t.Errorf("halt %s: %d %s, want %d", tc.status, code, body, tc.want)
		}
		if hal.got.Actor != (incidents.Actor{Kind: incidents.ActorAPI, ID: "ops@example.com"}) || !hal.got.BreakGlass {
			t.Errorf("halt command %+v: want break-glass by the API actor", hal.got)
		}
	}
}

// Every route but the kill flag needs the API token; without the actor a
// change is refused before it reaches the domain.
func TestAPIRefusesBeforeTheDomain(t *testing.T) {
	hal := &halting{status: incidents.HaltVerified}
	h := &api.Handler{Token: "tok", Halting: hal}
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/agents/support-bot/halt", strings.NewReader(`{}`))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", w.Code)
	}
	if code, body := serve(t, h, http.MethodPost, "/api/v1/agents/support-bot/halt", `{"reason":"loop"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "actor is required") || hal.got.Agent != "" {
		t.Errorf("no actor: %d %s (domain saw %+v), want 422 before the domain", code, body, hal.got)
	}
}
