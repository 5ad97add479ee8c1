package otlp_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/otlp"
)

// A token admits the spans of the agents it covers; the others are rejected
// in partial_success and never reach the recorder.
func TestHandlerTokenScope(t *testing.T) {
	creds := []otlp.Credential{
		{Token: "sb-now", Principal: otlp.Principal{Agents: map[string]bool{"support-bot": true}, Source: "SB_TOKEN"}},
		{Token: "sb-next", Principal: otlp.Principal{Agents: map[string]bool{"support-bot": true}, Source: "SB_TOKEN_NEXT"}},
		{Token: "other", Principal: otlp.Principal{Agents: map[string]bool{"billing-agent": true}, Source: "BILLING_TOKEN"}},
		// One token in two variables admits both variables' agents.
		{Token: "shared", Principal: otlp.Principal{Agents: map[string]bool{"billing-agent": true}, Source: "BILLING_TEAM_TOKEN"}},
		{Token: "shared", Principal: otlp.Principal{Agents: map[string]bool{"support-bot": true}, Source: "SB_TEAM_TOKEN"}},
	}
	body, err := os.ReadFile("testdata/genai_current.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, all string
		status, stored   int
		rejected         int64
		reason           string
	}{
		{"OKOwnToken", "sb-now", "", 200, 3, 0, ""},
		{"OKNextToken", "sb-next", "", 200, 3, 0, ""},
		{"OKAllAgentsToken", "gateway", "gateway", 200, 3, 0, ""},
		{"ErrOtherAgentsToken", "other", "", 200, 0, 3,
			"3 spans of agent support-bot refused: the token (BILLING_TOKEN) does not cover support-bot"},
		{"OKTokenInTwoVariables", "shared", "", 200, 3, 0, ""},
		{"ErrWrongToken", "sb-nox", "gateway", 401, 0, 0, ""},
		{"ErrEmptyToken", "", "", 401, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := 0
			h := otlp.NewHandler(otlp.Config{Token: tt.all, Credentials: func() []otlp.Credential { return creds },
				Resolve: resolve, Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
					stored += len(steps)
					return nil, nil
				})})
			req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tt.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status || stored != tt.stored {
				t.Fatalf("got %d with %d steps stored, want %d with %d: %s", w.Code, stored, tt.status, tt.stored, w.Body)
			}
			if strings.Contains(w.Body.String(), tt.token) && tt.token != "" {
				t.Errorf("the answer holds the token: %s", w.Body)
			}
			if w.Code != 200 {
				return
			}
			resp := ptraceotlp.NewExportResponse()
			if err := resp.UnmarshalJSON(w.Body.Bytes()); err != nil {
				t.Fatal(err)
			}
			if got := resp.PartialSuccess().RejectedSpans(); got != tt.rejected ||
				!strings.Contains(resp.PartialSuccess().ErrorMessage(), tt.reason) {
				t.Errorf("partial_success %d %q, want %d %q", got, resp.PartialSuccess().ErrorMessage(), tt.rejected, tt.reason)
			}
		})
	}
}

// refusalRecorder records nothing and remembers what was refused.
type refusalRecorder struct{ refused []sessions.Refusal }

func (r *refusalRecorder) Record(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	return nil, nil
}

func (r *refusalRecorder) Refuse(ctx context.Context, rs []sessions.Refusal) error {
	r.refused = append(r.refused, rs...)
	return nil
}

// Spans another agent's token brought are remembered with the session they
// name, as every other refusal is: `reins session ID` then says why reins
// has no record of it, instead of "no span naming it has reached reins".
func TestHandlerTokenRefusalNamesTheSession(t *testing.T) {
	body, err := os.ReadFile("testdata/genai_current.json")
	if err != nil {
		t.Fatal(err)
	}
	rec := &refusalRecorder{}
	creds := []otlp.Credential{{Token: "other", Principal: otlp.Principal{Agents: map[string]bool{"billing-agent": true}, Source: "BILLING_TOKEN"}}}
	h := otlp.NewHandler(otlp.Config{Credentials: func() []otlp.Credential { return creds }, Resolve: resolve, Recorder: rec})
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer other")
	h.ServeHTTP(httptest.NewRecorder(), req)
	var spans int64
	for _, r := range rec.refused {
		if r.Reason != sessions.RefusedToken || r.Agent != "support-bot" || r.Session == "" {
			t.Errorf("refusal %+v: want support-bot's spans refused for the token, naming their session", r)
		}
		spans += r.Spans
	}
	if spans != 3 {
		t.Errorf("%d spans remembered as refused, want 3: %+v", spans, rec.refused)
	}
}
