package alerts_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/alerts"
)

const (
	token  = "webhook-token-123"
	secret = "hmac-secret-456"
)

// fakeIngester records what it is given and answers with IngestFn.
type fakeIngester struct {
	mu       sync.Mutex
	calls    [][]incidents.Alert
	IngestFn func([]incidents.Alert) (incidents.IngestResult, error)
}

func (f *fakeIngester) Ingest(_ context.Context, a []incidents.Alert) (incidents.IngestResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, a)
	f.mu.Unlock()
	if f.IngestFn != nil {
		return f.IngestFn(a)
	}
	return incidents.IngestResult{Incidents: []int64{42}, Opened: 1, New: len(a)}, nil
}

func newHandler(source string, ing *fakeIngester, configure ...func(*alerts.HandlerConfig)) http.Handler {
	parse, _ := alerts.ParserFor(source)
	cfg := alerts.HandlerConfig{Source: source, Parse: parse, Token: token, Ingest: ing, Options: testOptions}
	for _, c := range configure {
		c(&cfg)
	}
	return alerts.NewHandler(cfg)
}

type request struct {
	method, target, contentType string
	body                        []byte
	header                      map[string]string
}

func post(source string, body []byte) request {
	return request{method: http.MethodPost, target: "/webhooks/" + source, contentType: "application/json",
		body: body, header: map[string]string{"Authorization": "Bearer " + token}}
}

func (r request) with(k, v string) request {
	h := map[string]string{}
	for hk, hv := range r.header {
		h[hk] = hv
	}
	h[k] = v
	r.header = h
	return r
}

func serve(t *testing.T, h http.Handler, r request) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(r.method, r.target, bytes.NewReader(r.body))
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a JSON error: %v", rec.Body.String(), err)
	}
	return body.Error
}

func signGrafana(body []byte, ts string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	if ts != "" {
		mac.Write([]byte(ts + ":"))
	}
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func signLangfuse(body []byte, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func TestHandlerRefuses(t *testing.T) {
	am := fixture(t, "alertmanager", "firing.json")
	gf := fixture(t, "grafana", "firing.json")
	lf := fixture(t, "langfuse", "alert.json")
	withSecret := func(c *alerts.HandlerConfig) { c.Secret = secret }
	noToken := func(c *alerts.HandlerConfig) { c.Token = "" }
	huge := []byte(`{"version":"4","alerts":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	tests := []struct {
		name      string
		source    string
		configure []func(*alerts.HandlerConfig)
		req       request
		want      int
		wantErr   string
	}{
		{"ErrMethod", "alertmanager", nil, request{method: http.MethodGet, target: "/webhooks/alertmanager"}, 405, "use POST"},
		{"ErrMissingToken", "alertmanager", nil, request{method: "POST", target: "/", contentType: "application/json", body: am}, 401, "missing token"},
		{"ErrWrongToken", "alertmanager", nil, post("alertmanager", am).with("Authorization", "Bearer nope"), 401, "wrong token"},
		{"ErrWrongQueryToken", "alertmanager", nil, request{method: "POST", target: "/?token=nope", contentType: "application/json", body: am}, 401, "wrong token"},
		{"ErrBasicAuthIsNotBearer", "alertmanager", nil, post("alertmanager", am).with("Authorization", "Basic "+token), 401, "missing token"},
		{"ErrNoTokenConfigured", "alertmanager", []func(*alerts.HandlerConfig){noToken}, post("alertmanager", am), 401, "set REINS_WEBHOOK_TOKEN"},
		{"ErrBodyTooLarge", "alertmanager", nil, post("alertmanager", huge), 413, "over 1 MiB"},
		{"ErrContentType", "alertmanager", nil, request{method: "POST", target: "/", contentType: "application/x-www-form-urlencoded", body: am, header: map[string]string{"Authorization": "Bearer " + token}}, 415, "Content-Type: application/json"},
		{"ErrNoContentType", "alertmanager", nil, request{method: "POST", target: "/", body: am, header: map[string]string{"Authorization": "Bearer " + token}}, 415, "Content-Type"},
		{"ErrMalformedJSON", "alertmanager", nil, post("alertmanager", []byte(`{"version":"4",`)), 400, "malformed JSON"},
		{"ErrUnknownField", "generic", nil, post("generic", fixture(t, "generic", "unknown_field.json")), 422, `"sevrity"`},
		{"ErrWrongTypes", "generic", nil, post("generic", fixture(t, "generic", "wrong_type.json")), 422, "sessions: want an array"},
		{"ErrNoAgent", "alertmanager", nil, post("alertmanager", fixture(t, "alertmanager", "no_agent.json")), 422, "none of the labels agent, service"},
		{"ErrGrafanaForged", "grafana", []func(*alerts.HandlerConfig){withSecret}, post("grafana", gf).with("X-Grafana-Alerting-Signature", strings.Repeat("ab", 32)), 401, "does not match"},
		{"ErrGrafanaUnsigned", "grafana", []func(*alerts.HandlerConfig){withSecret}, post("grafana", gf), 401, "missing X-Grafana-Alerting-Signature"},
		{"ErrGrafanaOtherBody", "grafana", []func(*alerts.HandlerConfig){withSecret}, post("grafana", gf).with("X-Grafana-Alerting-Signature", signGrafana([]byte("{}"), "")), 401, "does not match"},
		{"ErrGrafanaStaleTimestamp", "grafana", []func(*alerts.HandlerConfig){withSecret},
			post("grafana", gf).with("X-Grafana-Alerting-Signature-Timestamp", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)).
				with("X-Grafana-Alerting-Signature", signGrafana(gf, strconv.FormatInt(now.Add(-time.Hour).Unix(), 10))), 401, "away from reins' clock"},
		{"ErrLangfuseForged", "langfuse", []func(*alerts.HandlerConfig){withSecret},
			post("langfuse", lf).with("X-Langfuse-Signature", "t="+strconv.FormatInt(now.Unix(), 10)+",v1="+strings.Repeat("0", 64)), 401, "does not match"},
		{"ErrLangfuseStale", "langfuse", []func(*alerts.HandlerConfig){withSecret},
			post("langfuse", lf).with("X-Langfuse-Signature", signLangfuse(lf, now.Add(-6*time.Minute))), 401, "away from reins' clock"},
		{"ErrLangfuseFuture", "langfuse", []func(*alerts.HandlerConfig){withSecret},
			post("langfuse", lf).with("X-Langfuse-Signature", signLangfuse(lf, now.Add(6*time.Minute))), 401, "away from reins' clock"},
		{"ErrLangfuseUnsigned", "langfuse", []func(*alerts.HandlerConfig){withSecret}, post("langfuse", lf), 401, "missing X-Langfuse-Signature"},
		{"ErrLangfuseGarbled", "langfuse", []func(*alerts.HandlerConfig){withSecret}, post("langfuse", lf).with("X-Langfuse-Signature", "v1=zz"), 401, "want t=<unix>,v1=<hex>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &fakeIngester{}
			rec := serve(t, newHandler(tt.source, ing, tt.configure...), tt.req)
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d (body %s)", rec.Code, tt.want, rec.Body)
			}
			if got := errorOf(t, rec); !strings.Contains(got, tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", got, tt.wantErr)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want JSON", ct)
			}
			if len(ing.calls) != 0 {
				t.Errorf("Ingest called %d times on a refusal, want 0", len(ing.calls))
			}
		})
	}
}

func TestHandlerAccepts(t *testing.T) {
	gf := fixture(t, "grafana", "firing.json")
	lf := fixture(t, "langfuse", "alert.json")
	gts := strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)
	withSecret := func(c *alerts.HandlerConfig) { c.Secret = secret }
	tests := []struct {
		name      string
		source    string
		configure []func(*alerts.HandlerConfig)
		req       request
		wantN     int
	}{
		{"OK", "alertmanager", nil, post("alertmanager", fixture(t, "alertmanager", "firing.json")), 2},
		{"OKQueryToken", "alertmanager", nil, request{method: "POST", target: "/webhooks/alertmanager?token=" + token, contentType: "application/json; charset=utf-8", body: fixture(t, "alertmanager", "grown.json")}, 3},
		{"OKGrafanaUnsignedWithoutSecret", "grafana", nil, post("grafana", gf), 1},
		{"OKGrafanaSigned", "grafana", []func(*alerts.HandlerConfig){withSecret}, post("grafana", gf).with("X-Grafana-Alerting-Signature", signGrafana(gf, "")), 1},
		{"OKGrafanaSignedTimestamp", "grafana", []func(*alerts.HandlerConfig){withSecret},
			post("grafana", gf).with("X-Grafana-Alerting-Signature-Timestamp", gts).with("X-Grafana-Alerting-Signature", signGrafana(gf, gts)), 1},
		{"OKLangfuseSigned", "langfuse", []func(*alerts.HandlerConfig){withSecret}, post("langfuse", lf).with("X-Langfuse-Signature", signLangfuse(lf, now.Add(-4*time.Minute))), 1},
		{"OKDatadog", "datadog", nil, post("datadog", fixture(t, "datadog", "triggered.json")), 1},
		{"OKGeneric", "generic", nil, post("generic", fixture(t, "generic", "spec.json")), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &fakeIngester{}
			rec := serve(t, newHandler(tt.source, ing, tt.configure...), tt.req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (body %s)", rec.Code, rec.Body)
			}
			if len(ing.calls) != 1 {
				t.Fatalf("Ingest called %d times, want 1", len(ing.calls))
			}
			parse, ok := alerts.ParserFor(tt.source)
			if !ok {
				t.Fatalf("no parser for %s", tt.source)
			}
			parsed, perr := parse(tt.req.body, nil, testOptions())
			if perr != nil {
				t.Fatal(perr)
			}
			if got := ing.calls[0]; len(got) != tt.wantN || got[0].Fingerprint != parsed[0].Fingerprint || got[0].Agent != parsed[0].Agent {
				t.Errorf("Ingest got %d alerts (%+v), want the %d parsed ones", len(got), got, tt.wantN)
			}
			var resp alerts.IngestResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.Incidents) != 1 || resp.Incidents[0] != 42 || resp.New != tt.wantN || resp.Alerts != tt.wantN {
				t.Errorf("response = %+v, want incident 42 with %d new", resp, tt.wantN)
			}
		})
	}
}

func TestHandlerIngestFails(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    int
		wantErr string
	}{
		{"ErrUnavailable", incidents.Errorf(incidents.EUNAVAILABLE, "The store is unreachable; the sender should retry."), 503, "store is unreachable"},
		{"ErrInternal", context.DeadlineExceeded, 500, "Internal error."},
		{"ErrInvalid", incidents.Errorf(incidents.EINVALID, "bad alert"), 422, "bad alert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ing := &fakeIngester{IngestFn: func([]incidents.Alert) (incidents.IngestResult, error) { return incidents.IngestResult{}, tt.err }}
			rec := serve(t, newHandler("generic", ing), post("generic", fixture(t, "generic", "spec.json")))
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
			if got := errorOf(t, rec); got != tt.wantErr && !strings.Contains(got, tt.wantErr) {
				t.Errorf("error = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func TestHandlerOptionsPerRequest(t *testing.T) {
	resolve := "refund-agent"
	ing := &fakeIngester{}
	h := newHandler("generic", ing, func(c *alerts.HandlerConfig) {
		c.Options = func() alerts.Options {
			o := testOptions()
			o.Resolve = func(string) (string, bool) { return resolve, true }
			return o
		}
	})
	body := []byte(`{"agent":"whoever","summary":"s"}`)
	serve(t, h, post("generic", body))
	resolve = "support-bot"
	serve(t, h, post("generic", body))
	if len(ing.calls) != 2 || ing.calls[0][0].Agent != "refund-agent" || ing.calls[1][0].Agent != "support-bot" {
		t.Errorf("agents = %v, want the registry read per request", ing.calls)
	}
}

func TestHandlerRefusesAnythingAfterTheJSONBody(t *testing.T) {
	good := fixture(t, "alertmanager", "firing.json")
	for _, tail := range []string{" ]", " {}", " x"} {
		ing := &fakeIngester{}
		rec := serve(t, newHandler(alerts.SourceAlertmanager, ing), post("alertmanager", append(slices.Clone(good), tail...)))
		if rec.Code != http.StatusBadRequest || len(ing.calls) != 0 {
			t.Errorf("body with %q after it: got %d %s and %d ingests, want 400 and none", tail, rec.Code, rec.Body, len(ing.calls))
		}
	}
	if rec := serve(t, newHandler(alerts.SourceAlertmanager, &fakeIngester{}), post("alertmanager", good)); rec.Code != http.StatusOK {
		t.Errorf("the body alone: got %d %s, want 200", rec.Code, rec.Body)
	}
}
