package alerts

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/api"
)

// MaxBodyBytes is the largest webhook body accepted (docs/api.md: 1 MiB).
const MaxBodyBytes = 1 << 20

// Ingester stores alerts: intake.Service (incidents/intake) implements it.
type Ingester interface {
	Ingest(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error)
}

// HandlerConfig configures the webhook handler of one source.
type HandlerConfig struct {
	Source string
	Parse  Parser
	// Token is REINS_WEBHOOK_TOKEN. Empty refuses every request: an
	// unauthenticated alert endpoint would let anyone open incidents and page.
	Token string
	// Secret is the source's HMAC secret (Grafana, Langfuse). Empty skips the
	// signature check: the token already authenticates, the signature adds
	// integrity and, with a timestamp, replay protection.
	Secret  string
	Options func() Options // called per request: the registry may be reloaded
	Ingest  Ingester
	Log     *slog.Logger
	// Metrics are the series the handler counts in (NewMetrics, one per
	// registry for all sources); nil: unregistered ones.
	Metrics *Metrics
}

// IngestResponse is the body of a 200 answer.
type IngestResponse struct {
	Incidents []int64 `json:"incidents"`
	Alerts    int     `json:"alerts"`
	Opened    int     `json:"opened"`
	New       int     `json:"new"`
	Repeated  int     `json:"repeated"`
	Changed   int     `json:"changed"`
}

type handler struct {
	cfg    HandlerConfig
	verify verifier

	// This source's series, looked up once rather than per request.
	duration     prometheus.Observer
	received     prometheus.Counter
	deduplicated prometheus.Counter
}

// NewHandler returns the handler of one monitoring webhook. It answers 2xx
// only once the alerts are stored, so the sender retries anything lost; every
// refusal is a JSON {"error": …} and stores nothing.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Options == nil {
		cfg.Options = func() Options { return Options{} }
	}
	if cfg.Parse == nil {
		cfg.Parse, _ = ParserFor(cfg.Source)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Parse == nil || cfg.Ingest == nil {
		// A wiring mistake, caught the first time reins starts.
		panic(fmt.Sprintf("alerts.NewHandler: source %q needs a parser and an ingester", cfg.Source))
	}
	return &handler{cfg: cfg, verify: verifiers[cfg.Source],
		duration:     cfg.Metrics.duration.WithLabelValues(cfg.Source),
		received:     cfg.Metrics.received.WithLabelValues(cfg.Source),
		deduplicated: cfg.Metrics.deduplicated.WithLabelValues(cfg.Source)}
}

// readBody reads the body, at most MaxBodyBytes of it. A body whose length
// is declared is read into a buffer of that size: growing one from nothing
// was a tenth of what a storm's webhooks allocated.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if n := r.ContentLength; n >= 0 && n <= MaxBodyBytes {
		body := make([]byte, n)
		// net/http ends a declared body at its length, and errs if it is short.
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(rd)
}

// refusal is a 4xx/5xx answer with the metric reason it counts under.
type refusal struct {
	status int
	reason string
	msg    string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.duration.Observe(time.Since(start).Seconds()) }()

	opts := h.cfg.Options()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	alerts, ref := h.accept(w, r, opts)
	if ref != nil {
		h.refuse(w, r, ref)
		return
	}
	res, err := h.cfg.Ingest.Ingest(r.Context(), alerts)
	if err != nil {
		status := api.StatusOf(err)
		h.cfg.Log.Error("store alerts", "source", h.cfg.Source, "alerts", len(alerts), "err", err)
		h.refuse(w, r, &refusal{status: status, reason: reasonIngest, msg: incidents.ErrorMessage(err)})
		return
	}
	h.received.Add(float64(len(alerts)))
	h.deduplicated.Add(float64(res.Repeated))
	// The answer of every notification of a storm: compact, as senders read
	// it, not indented as the API's (api.WriteJSON) for people.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(IngestResponse{ // the sender hung up: nothing left to tell it
		Incidents: nonNil(res.Incidents), Alerts: len(alerts), Opened: res.Opened,
		New: res.New, Repeated: res.Repeated, Changed: res.Changed,
	})
}

// accept runs every check before anything is stored, in the order a sender
// can act on: method, token, media type, size, signature, JSON, content.
func (h *handler) accept(w http.ResponseWriter, r *http.Request, opts Options) ([]incidents.Alert, *refusal) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &refusal{http.StatusMethodNotAllowed, reasonMethod, "use POST"}
	}
	if ref := h.authenticate(r); ref != nil {
		return nil, ref
	}
	if !jsonMediaType(r.Header.Get("Content-Type")) {
		return nil, &refusal{http.StatusUnsupportedMediaType, reasonMediaType, "send the body as JSON with Content-Type: application/json"}
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &refusal{http.StatusRequestEntityTooLarge, reasonTooLarge, "body over 1 MiB: lower max_alerts or trim annotations"}
		}
		return nil, &refusal{http.StatusBadRequest, reasonMalformed, "could not read the body"}
	}
	if h.verify != nil && h.cfg.Secret != "" {
		if err := h.verify(body, r.Header, h.cfg.Secret, opts.Now); err != nil {
			return nil, &refusal{http.StatusUnauthorized, reasonSignature, incidents.ErrorMessage(err)}
		}
	}
	alerts, err := h.cfg.Parse(body, r.Header, opts)
	if err != nil {
		// Only now tell malformed JSON from JSON reins cannot use: checking
		// first would scan every good body twice.
		if !json.Valid(body) {
			return nil, &refusal{http.StatusBadRequest, reasonMalformed, malformedMessage(body)}
		}
		return nil, &refusal{http.StatusUnprocessableEntity, reasonInvalid, incidents.ErrorMessage(err)}
	}
	return alerts, nil
}

// authenticate checks the bearer token or ?token= in constant time.
func (h *handler) authenticate(r *http.Request) *refusal {
	if h.cfg.Token == "" {
		return &refusal{http.StatusUnauthorized, reasonUnauthorized,
			"webhooks are refused: set REINS_WEBHOOK_TOKEN on the reins server, then send it as a bearer token or ?token="}
	}
	got := r.URL.Query().Get("token")
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, _ := strings.Cut(auth, " ")
		if strings.EqualFold(scheme, "Bearer") {
			got = strings.TrimSpace(token)
		}
	}
	if got == "" {
		return &refusal{http.StatusUnauthorized, reasonUnauthorized,
			"missing token: send Authorization: Bearer <REINS_WEBHOOK_TOKEN> or add ?token=<REINS_WEBHOOK_TOKEN> to the URL"}
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) != 1 {
		return &refusal{http.StatusUnauthorized, reasonUnauthorized, "wrong token: use the value of REINS_WEBHOOK_TOKEN"}
	}
	return nil
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	h.cfg.Metrics.refused.WithLabelValues(h.cfg.Source, ref.reason).Inc()
	if ref.reason != reasonIngest { // ingest failures are logged with their cause
		h.cfg.Log.Warn("webhook refused", "source", h.cfg.Source, "status", ref.status,
			"reason", ref.reason, "error", ref.msg, "remote", r.RemoteAddr)
	}
	if ref.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="reins"`)
	}
	api.WriteJSON(w, ref.status, map[string]string{"error": ref.msg})
}

// jsonMediaType accepts application/json, with parameters, and +json types.
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func malformedMessage(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	if err == nil { // unreachable: json.Valid said no
		return "malformed JSON"
	}
	return incidents.ErrorMessage(decodeError(err))
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
