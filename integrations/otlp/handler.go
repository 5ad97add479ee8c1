package otlp

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
)

// DefaultMaxBytes caps a request body after decompression.
const DefaultMaxBytes = 8 << 20

// Recorder stores the steps of one request (sessions.Service).
type Recorder interface {
	Record(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error)
}

// Principal is what a bearer token admits: the spans of every agent (the
// all-agents token, for a trusted Collector gateway) or of the agents named.
type Principal struct {
	All    bool
	Agents map[string]bool // by configured name
	// Source names where the token came from (REINS_OTLP_TOKEN or the
	// variable of a token_env) for messages: never the token itself.
	Source string
}

// Covers says whether the token admits spans of agent.
func (p Principal) Covers(agent string) bool { return p.All || p.Agents[agent] }

// Credential is one accepted bearer token and what it admits.
type Credential struct {
	Token     string
	Principal Principal
}

// Joiner, when the Recorder is one, joins spans without a session to the
// session their trace names in another request, holding them until then
// (sessions.Service).
type Joiner interface {
	Join(ctx context.Context, steps, pending []sessions.Step, bindings []sessions.TraceBinding) (sessions.Joined, error)
	Rehold(ctx context.Context, steps []sessions.Step) error
}

// Refuser, when the Recorder is one, remembers refused spans for reins
// doctor, /readyz, the agents page and reins session (sessions.Service).
type Refuser interface {
	Refuse(ctx context.Context, rs []sessions.Refusal) error
}

// Config configures the handler.
type Config struct {
	Token string // REINS_OTLP_TOKEN, admitting every agent's spans; "" for none
	// Credentials returns the per-agent tokens in force (reins.yaml's
	// telemetry.token_env, read from the environment); nil for none. With
	// neither Token nor a credential every request is refused.
	Credentials func() []Credential
	MaxBytes    int64    // after decompression; 0 for DefaultMaxBytes
	Resolve     Resolver // agent by name or alias
	// Names, when set, returns the in-house attribute names in force
	// (reins.yaml telemetry:).
	Names    func() Names
	Recorder Recorder
	// MaxInFlight bounds concurrent writes; a request that cannot start one
	// within Wait is answered 503 with Retry-After (exporters retry).
	MaxInFlight int
	Wait        time.Duration
	Log         *slog.Logger
	// Observe, when set, sees the steps stored (the guard hooks in here).
	Observe func(ctx context.Context, steps []sessions.Step, totals []sessions.Totals)
	// Metrics are the series the handler counts in (NewMetrics); nil:
	// unregistered ones.
	Metrics *Metrics
	// MaxInflightBytes is the byte budget the requests in flight share
	// (REINS_OTLP_MAX_INFLIGHT_BYTES); 0 for DefaultMaxInflightBytes. A
	// request takes its share before its body is read; past it the answer
	// is 429 with Retry-After.
	MaxInflightBytes int64
	// MaxSpans and MaxAttributes cap a request's spans and a span's
	// attributes (REINS_OTLP_MAX_SPANS, REINS_OTLP_MAX_ATTRIBUTES); 0 for
	// the defaults.
	MaxSpans      int
	MaxAttributes int
	// SmallSpans and BulkWrites make the intake's two lanes: a request of
	// more than SmallSpans spans (0 for DefaultSmallSpans) is bulk, and at
	// most BulkWrites of those write at once (0: the CPUs reins may use, at
	// least 2, as many as it has cores to decode for); a
	// small request (an agent exporting as its spans end, a crossing span)
	// does not queue behind them. Urgent, when set, marks a small request's
	// writes as passing queued bulk writes in the store too.
	SmallSpans int
	BulkWrites int
	Urgent     func(context.Context) context.Context
}

// DefaultSmallSpans is the largest request of the small lane. Bulk writes
// beyond a few at once only queue in the database, where a small request's
// statements then wait behind theirs for the same cores.
const DefaultSmallSpans = 32

// Handler serves POST /v1/traces.
type Handler struct {
	cfg    Config
	slots  chan struct{}
	bulk   chan struct{} // the bulk lane's writes (Config.BulkWrites)
	budget *budget

	warnedMu sync.Mutex
	warned   map[string]time.Time // agent → when its refused spans were last logged

	refusedMu  sync.Mutex
	refusedLog map[[2]string]time.Time // (agent, reason) → last warn log of refused spans
}

// NewHandler returns the /v1/traces handler.
func NewHandler(cfg Config) *Handler {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 32
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes
	}
	// One body of MaxBytes must fit, or it would be refused forever.
	cfg.MaxInflightBytes = max(cfg.MaxInflightBytes, cfg.MaxBytes+budgetChunk)
	if cfg.MaxSpans <= 0 {
		cfg.MaxSpans = DefaultMaxSpans
	}
	if cfg.MaxAttributes <= 0 {
		cfg.MaxAttributes = DefaultMaxAttributes
	}
	if cfg.SmallSpans <= 0 {
		cfg.SmallSpans = DefaultSmallSpans
	}
	if cfg.BulkWrites <= 0 {
		cfg.BulkWrites = max(2, runtime.GOMAXPROCS(0))
	}
	return &Handler{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), bulk: make(chan struct{}, cfg.BulkWrites),
		budget: &budget{max: cfg.MaxInflightBytes}}
}

const (
	typeProto = "application/x-protobuf"
	typeJSON  = "application/json"
)

// gRPC status codes used in error bodies (google.rpc.Status).
const (
	codeInvalidArgument = 3
	codeResourceExhaust = 8
	codeUnauthenticated = 16
	codeUnavailable     = 14
	codeInternal        = 13
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ct = strings.ToLower(ct)
	var creds []Credential
	if h.cfg.Credentials != nil {
		creds = h.cfg.Credentials()
	}
	if h.cfg.Token == "" && len(creds) == 0 {
		h.cfg.Metrics.refused.WithLabelValues("disabled").Inc()
		h.fail(w, ct, http.StatusUnauthorized, codeUnauthenticated, "OTLP intake is disabled: give agents tokens (telemetry.token_env in reins.yaml) or set REINS_OTLP_TOKEN, and configure the exporter's Authorization header")
		return
	}
	who, ok := h.authenticate(r.Header.Get("Authorization"), creds)
	if !ok {
		h.cfg.Metrics.refused.WithLabelValues("unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="reins"`)
		h.fail(w, ct, http.StatusUnauthorized, codeUnauthenticated, "missing or wrong bearer token: send the agent's token (telemetry.token_env) or REINS_OTLP_TOKEN")
		return
	}
	if ct != typeProto && ct != typeJSON {
		h.cfg.Metrics.refused.WithLabelValues("media_type").Inc()
		h.fail(w, typeJSON, http.StatusUnsupportedMediaType, codeInvalidArgument,
			"Content-Type must be application/x-protobuf or application/json")
		return
	}
	// The request's share of the in-flight budget is taken before a byte
	// of the body is read: what it declares, the rest as it inflates.
	sh := &share{b: h.budget}
	defer sh.release()
	first := int64(budgetChunk)
	if r.ContentLength > 0 {
		first = min(r.ContentLength, h.cfg.MaxBytes+1)
	}
	if !sh.grow(first) {
		h.overBudget(w, ct)
		return
	}
	body, status, err := h.read(r, sh)
	if errors.Is(err, errBudget) {
		h.overBudget(w, ct)
		return
	}
	if err != nil {
		h.cfg.Metrics.refused.WithLabelValues(reasonOf(status)).Inc()
		h.fail(w, ct, status, codeInvalidArgument, err.Error())
		return
	}
	req := ptraceotlp.NewExportRequest()
	if ct == typeProto {
		err = req.UnmarshalProto(body)
	} else {
		err = req.UnmarshalJSON(body)
	}
	if err != nil {
		h.cfg.Metrics.refused.WithLabelValues("malformed").Inc()
		h.fail(w, ct, http.StatusBadRequest, codeInvalidArgument, "cannot decode the "+ct+" body: "+err.Error())
		return
	}
	body = nil // decoded: the bytes are garbage now
	spans := req.Traces().SpanCount()
	overSpans, overAttrs := limits(req.Traces(), h.cfg.MaxSpans, h.cfg.MaxAttributes)
	var names Names
	if h.cfg.Names != nil {
		names = h.cfg.Names()
	}
	res := MapNames(req.Traces(), h.cfg.Resolve, names)
	if overSpans > 0 || overAttrs > 0 {
		res.Rejected += overSpans
		res.Reasons = append(limitReasons(overSpans, overAttrs, h.cfg.MaxSpans, h.cfg.MaxAttributes), res.Reasons...)
		res.Dropped[DropOverCap] += overSpans
		res.Refusals = append(res.Refusals, sessions.Refusal{Reason: sessions.RefusedCap, Agent: "(request)", Spans: int64(overSpans)})
		h.cfg.Metrics.attrsIgnored.WithLabelValues("over_cap").Add(float64(overAttrs))
	}
	h.count(res, spans)
	h.scope(&res, who)
	if len(res.Steps) > 0 || len(res.Pending) > 0 {
		ctx, lane := r.Context(), h.slots
		if len(res.Steps)+len(res.Pending) > h.cfg.SmallSpans {
			lane = h.bulk
		} else if h.cfg.Urgent != nil {
			ctx = h.cfg.Urgent(ctx)
		}
		if !h.acquire(ctx, lane) {
			h.cfg.Metrics.refused.WithLabelValues("overloaded").Inc()
			w.Header().Set("Retry-After", "2")
			h.fail(w, ct, http.StatusServiceUnavailable, codeUnavailable, "reins is busy storing spans: retry after 2 s")
			return
		}
		var totals []sessions.Totals
		var err error
		var joined sessions.Joined
		j, joins := h.cfg.Recorder.(Joiner)
		if joins {
			joined, err = j.Join(ctx, res.Steps, res.Pending, res.Bindings)
			res.Steps = joined.Steps
			h.cfg.Metrics.spansHeld.Add(float64(joined.Held))
			h.cfg.Metrics.spansJoined.Add(float64(joined.Joined))
			h.refuse(&res, joined.Refusals)
		} else {
			h.refuse(&res, refuseAll(res.Pending))
		}
		res.Pending = nil
		// Steps are judged in the order they happened: the first crossing
		// acts, and its number is the same everywhere it is shown.
		sort.SliceStable(res.Steps, func(i, j int) bool { return res.Steps[i].Start.Before(res.Steps[j].Start) })
		if err == nil && len(res.Steps) > 0 {
			totals, err = h.cfg.Recorder.Record(ctx, res.Steps)
		}
		if err != nil && joins && len(joined.Claimed) > 0 {
			if rerr := j.Rehold(context.WithoutCancel(ctx), joined.Claimed); rerr != nil {
				h.cfg.Log.Error("put back held spans that could not be recorded", "spans", len(joined.Claimed), "err", rerr)
			}
		}
		<-lane
		if err != nil {
			h.cfg.Log.Error("store spans", "spans", len(res.Steps), "err", err)
			h.cfg.Metrics.refused.WithLabelValues("store_failed").Inc()
			w.Header().Set("Retry-After", "5")
			h.fail(w, ct, http.StatusServiceUnavailable, codeUnavailable, "spans could not be stored: retry after 5 s")
			return
		}
		h.cfg.Metrics.stepsStored.Add(float64(len(res.Steps)))
		if h.cfg.Observe != nil && len(totals) > 0 {
			h.cfg.Observe(ctx, res.Steps, totals)
		}
	}
	h.Refused(r.Context(), res.Refusals)
	resp := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(res.Rejected))
		resp.PartialSuccess().SetErrorMessage(strings.Join(res.Reasons, "; "))
	}
	var out []byte
	if ct == typeProto {
		out, err = resp.MarshalProto()
	} else {
		out, err = resp.MarshalJSON()
	}
	if err != nil {
		h.fail(w, ct, http.StatusInternalServerError, codeInternal, "encode the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	h.cfg.Metrics.duration.Observe(time.Since(start).Seconds())
}

// authenticate finds the credential whose token the Authorization header
// carries. Every token is compared, in constant time, whatever matched
// before: how long the answer takes says nothing of which token is close.
func (h *Handler) authenticate(header string, creds []Credential) (Principal, bool) {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || got == "" {
		return Principal{}, false
	}
	var who Principal
	found := 0
	if h.cfg.Token != "" {
		m := subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token))
		if m == 1 {
			who = Principal{All: true, Source: "REINS_OTLP_TOKEN"}
		}
		found |= m
	}
	for _, c := range creds {
		if c.Token == "" {
			continue
		}
		m := subtle.ConstantTimeCompare([]byte(got), []byte(c.Token))
		if m == 1 {
			who = who.union(c.Principal)
		}
		found |= m
	}
	return who, found == 1
}

// union is what a token held in two variables admits: both sets of agents.
func (p Principal) union(o Principal) Principal {
	if p.Agents == nil && !p.All {
		return o
	}
	out := Principal{All: p.All || o.All, Agents: make(map[string]bool, len(p.Agents)+len(o.Agents)),
		Source: p.Source + ", " + o.Source}
	for a := range p.Agents {
		out.Agents[a] = true
	}
	for a := range o.Agents {
		out.Agents[a] = true
	}
	return out
}

// scope rejects the steps of agents the request's token does not cover:
// nothing of them is stored or judged, and partial_success says which agent
// and why, so the exporter's log tells its operator what to fix.
func (h *Handler) scope(res *Result, who Principal) {
	if who.All {
		return
	}
	kept := res.Steps[:0]
	// By session, as the other refusals are: `reins session ID` then
	// says that spans naming it came with a token that does not cover them.
	bySession := map[[2]string]int64{}
	for _, st := range res.Steps {
		if who.Covers(st.Agent) {
			kept = append(kept, st)
			continue
		}
		bySession[[2]string{st.Agent, st.Session}]++
	}
	res.Steps = kept
	// Spans waiting for their trace's session, and the traces this request
	// would bind, of agents the token does not cover go the same way.
	pending := res.Pending[:0]
	for _, st := range res.Pending {
		if who.Covers(st.Agent) {
			pending = append(pending, st)
			continue
		}
		bySession[[2]string{st.Agent, ""}]++
	}
	res.Pending = pending
	bindings := res.Bindings[:0]
	for _, b := range res.Bindings {
		if who.Covers(b.Agent) {
			bindings = append(bindings, b)
		}
	}
	res.Bindings = bindings
	refused := map[string]int{}
	for _, k := range slices.SortedFunc(maps.Keys(bySession), func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	}) {
		res.Refusals = append(res.Refusals, sessions.Refusal{Reason: sessions.RefusedToken, Agent: k[0], Session: k[1], Spans: bySession[k]})
		refused[k[0]] += int(bySession[k])
	}
	for _, agent := range slices.Sorted(maps.Keys(refused)) {
		n := refused[agent]
		res.Rejected += n
		res.Reasons = append(res.Reasons, fmt.Sprintf(
			"%d spans of agent %s refused: the token (%s) does not cover %s; send them with %s's own telemetry token",
			n, agent, who.Source, agent, agent))
		h.cfg.Metrics.spansDropped.WithLabelValues(DropNotCovered).Add(float64(n))
		if h.warnOnce(agent) {
			h.cfg.Log.Warn("OTLP spans refused: the token does not cover their agent (logged once a minute per agent)",
				"agent", agent, "spans", n, "token_from", who.Source)
		}
	}
}

// warnOnce says whether refused spans of agent may be logged now: once a
// minute per agent, so a misconfigured exporter does not flood the log.
func (h *Handler) warnOnce(agent string) bool {
	h.warnedMu.Lock()
	defer h.warnedMu.Unlock()
	now := time.Now()
	if h.warned == nil || len(h.warned) > 10_000 {
		h.warned = map[string]time.Time{}
	}
	if now.Sub(h.warned[agent]) < time.Minute {
		return false
	}
	h.warned[agent] = now
	return true
}

// refuse counts the refusals of the held-span path in the answer.
func (h *Handler) refuse(res *Result, rs []sessions.Refusal) {
	if len(rs) == 0 {
		return
	}
	byReason := map[string][]string{}
	counts := map[string]int64{}
	for _, r := range rs {
		res.Rejected += int(r.Spans)
		counts[r.Reason] += r.Spans
		if len(byReason[r.Reason]) < 5 && !slices.Contains(byReason[r.Reason], r.Agent) {
			byReason[r.Reason] = append(byReason[r.Reason], r.Agent)
		}
		h.cfg.Metrics.spansDropped.WithLabelValues(r.Reason).Add(float64(r.Spans))
	}
	for _, reason := range slices.Sorted(maps.Keys(byReason)) {
		res.Reasons = append(res.Reasons, fmt.Sprintf("%d spans refused: %s: agent %s: %s", counts[reason], reason,
			strings.Join(byReason[reason], ", "), advice(reason)))
	}
	res.Refusals = append(res.Refusals, rs...)
}

func advice(reason string) string {
	switch reason {
	case sessions.RefusedNoSession:
		return "no span of their trace names a session: set gen_ai.conversation.id or session.id on at least one span of each trace (docs/telemetry.md)"
	case sessions.RefusedHoldFull:
		return "too many spans are waiting for their trace's session (telemetry.hold in reins.yaml): name the session on every span, or raise the bounds"
	}
	return sessions.ReasonText(reason)
}

// refuseAll refuses pending spans when there is nowhere to hold them.
func refuseAll(pending []sessions.Step) []sessions.Refusal {
	var rs []sessions.Refusal
	for _, st := range pending {
		rs = append(rs, sessions.Refusal{Reason: sessions.RefusedNoSession, Agent: st.Agent, Spans: 1})
	}
	return sessions.MergeRefusals(rs)
}

// Refused remembers refused spans (for reins doctor, the agents page and
// reins session) and logs them at warn, once per agent and reason a minute.
// The intake calls it for each request; the held-span sweep for spans that
// waited in vain.
func (h *Handler) Refused(ctx context.Context, rs []sessions.Refusal) {
	if len(rs) == 0 {
		return
	}
	now := time.Now()
	for i := range rs {
		if rs[i].At.IsZero() {
			rs[i].At = now
		}
	}
	if rf, ok := h.cfg.Recorder.(Refuser); ok {
		if err := rf.Refuse(context.WithoutCancel(ctx), rs); err != nil {
			h.cfg.Log.Error("remember refused spans", "err", err)
		}
	}
	h.refusedMu.Lock()
	defer h.refusedMu.Unlock()
	for _, r := range rs {
		if r.Reason == sessions.RefusedToken {
			continue // scope logs these, once a minute per agent
		}
		k := [2]string{r.Agent, r.Reason}
		if last, ok := h.refusedLog[k]; ok && now.Sub(last) < time.Minute {
			continue
		}
		if h.refusedLog == nil || len(h.refusedLog) > 10_000 {
			h.refusedLog = map[[2]string]time.Time{} // bounded: an unknown-service storm logs again rather than grow
		}
		h.refusedLog[k] = now
		h.cfg.Log.Warn("OTLP spans refused", "reason", r.Reason, "agent", r.Agent, "spans", r.Spans,
			"session", r.Session, "why", sessions.ReasonText(r.Reason))
	}
}

func (h *Handler) acquire(ctx context.Context, lane chan struct{}) bool {
	select {
	case lane <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.cfg.Wait)
	defer t.Stop()
	select {
	case lane <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// errTooLarge is answered 413.
var errTooLarge = errors.New("body too large")

// read returns the body, decompressed, refusing more than MaxBytes of it
// without inflating the rest: a gzip bomb costs at most MaxBytes+1 bytes.
func (h *Handler) read(r *http.Request, sh *share) ([]byte, int, error) {
	limit := h.cfg.MaxBytes
	var src io.Reader = http.MaxBytesReader(nil, r.Body, limit+1)
	size := int64(bytes.MinRead)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, limit) + bytes.MinRead
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("cannot read the gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
		size = bytes.MinRead * 64
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q is not supported: send gzip or none", enc)
	}
	// Sized from the declared length: io.ReadAll's doubling would hold up
	// to twice the body at the peak.
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(&budgetReader{r: io.LimitReader(src, limit+1), s: sh})
	body := buf.Bytes()
	if errors.Is(err, errBudget) {
		return nil, 0, err
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), err == nil && int64(len(body)) > limit:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%w: over %d bytes after decompression: export smaller batches (e.g. the batch processor's send_batch_max_size)", errTooLarge, limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("cannot read the body: %w", err)
	}
	return body, 0, nil
}

// overBudget answers a request the in-flight budget has no room for: 429
// with Retry-After, which OTLP exporters honour.
func (h *Handler) overBudget(w http.ResponseWriter, ct string) {
	h.cfg.Metrics.refused.WithLabelValues("over_budget").Inc()
	w.Header().Set("Retry-After", "1")
	if ct != typeProto {
		ct = typeJSON
	}
	h.fail(w, ct, http.StatusTooManyRequests, codeResourceExhaust,
		"reins has too many span bytes in flight (REINS_OTLP_MAX_INFLIGHT_BYTES): retry after 1 s")
}

func reasonOf(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "media_type"
	}
	return "malformed"
}

// fail answers an error as OTLP/HTTP says: a google.rpc.Status in the
// request's encoding. Its message is what a person reading the exporter's
// log needs.
func (h *Handler) fail(w http.ResponseWriter, ct string, status, code int, msg string) {
	var body []byte
	if ct == typeProto {
		body = statusProto(code, msg)
	} else {
		ct = typeJSON
		body = []byte(`{"code":` + strconv.Itoa(code) + `,"message":` + strconv.Quote(msg) + `}`)
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// statusProto encodes google.rpc.Status{code, message} by hand: two fields,
// not worth a dependency on the generated type.
func statusProto(code int, msg string) []byte {
	b := []byte{0x08}
	b = appendVarint(b, uint64(code))
	b = append(b, 0x12)
	b = appendVarint(b, uint64(len(msg)))
	return append(b, msg...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func (h *Handler) count(res Result, spans int) {
	h.cfg.Metrics.spansReceived.Add(float64(spans))
	for reason, n := range res.Dropped {
		h.cfg.Metrics.spansDropped.WithLabelValues(reason).Add(float64(n))
	}
	for attr, n := range res.WrongType {
		h.cfg.Metrics.attrsIgnored.WithLabelValues(attr).Add(float64(n))
	}
}
