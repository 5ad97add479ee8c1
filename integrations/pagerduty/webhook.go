package pagerduty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/PagerDuty/go-pagerduty/webhookv3"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/api"
)

// MaxWebhookBody caps a webhook body; PagerDuty drops webhooks over 256 KB anyway.
const MaxWebhookBody = 1 << 20

// maxFailedIDs bounds the memory of deliveries whose sink call failed.
const maxFailedIDs = 1024

// Sink receives incident state changes from PagerDuty. incidents.Service implements it.
type Sink interface {
	PagerAcknowledged(ctx context.Context, dedupKey, by string, at time.Time) error
	PagerResolved(ctx context.Context, dedupKey, by string, at time.Time) error
}

// Rememberer dedupes deliveries by X-Webhook-Id. Remember returns true the
// first time it sees key. The handler passes "pagerduty:webhook:<id>".
type Rememberer interface {
	Remember(ctx context.Context, key string) (bool, error)
}

// webhookHandler serves POST /webhooks/pagerduty.
type webhookHandler struct {
	secret string
	sink   Sink
	seen   Rememberer
	log    *slog.Logger

	// failed holds webhook IDs whose sink call failed after being remembered,
	// so PagerDuty's retry of the same ID is let through instead of being
	// dropped as a duplicate. Per process: a retry landing on another replica
	// is still dropped (see the package report on a transactional dedupe).
	mu     sync.Mutex
	failed map[string]bool
}

// NewWebhookHandler returns the handler for PagerDuty v3 webhooks. It verifies
// X-PagerDuty-Signature against secret (every request is refused when secret
// is ""), dedupes on X-Webhook-Id through seen (nil: no dedupe), and passes
// incident.acknowledged and incident.resolved to sink; it answers 200 to
// everything else it can authenticate, so PagerDuty neither retries nor
// disables the subscription over events reins does not use.
func NewWebhookHandler(secret string, sink Sink, seen Rememberer, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &webhookHandler{secret: secret, sink: sink, seen: seen, log: log, failed: map[string]bool{}}
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		api.WriteError(w, http.StatusMethodNotAllowed, "PagerDuty webhooks must be sent with POST.")
		return
	}
	if h.secret == "" {
		api.WriteError(w, http.StatusUnauthorized,
			"PagerDuty webhooks are refused: PAGERDUTY_WEBHOOK_SECRET is not set. Set it to the webhook subscription's signing secret.")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		api.WriteError(w, http.StatusRequestEntityTooLarge, "The body is larger than 1 MiB.")
		return
	} else if err != nil {
		api.WriteError(w, http.StatusBadRequest, "Could not read the body.")
		return
	} else if len(body) == 0 {
		api.WriteError(w, http.StatusBadRequest, "The body is empty: send a PagerDuty v3 webhook.")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := webhookv3.VerifySignature(r, h.secret); err != nil {
		h.log.WarnContext(ctx, "pagerduty webhook refused", "reason", err, "remote", r.RemoteAddr)
		api.WriteError(w, http.StatusUnauthorized,
			"Missing or invalid X-PagerDuty-Signature: check that PAGERDUTY_WEBHOOK_SECRET is the subscription's signing secret.")
		return
	}
	ev, err := parseWebhook(body)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "Malformed PagerDuty v3 webhook: "+err.Error())
		return
	}
	if !ev.relevant() {
		writeStatus(w, "ignored")
		return
	}
	h.handle(ctx, w, r.Header.Get("X-Webhook-Id"), ev)
}

// handle dedupes and delivers an authenticated acknowledge or resolve.
func (h *webhookHandler) handle(ctx context.Context, w http.ResponseWriter, id string, ev webhookEvent) {
	first, err := h.firstDelivery(ctx, id)
	if err != nil {
		h.log.ErrorContext(ctx, "pagerduty webhook: remember delivery", "webhook_id", id, "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "Could not record the delivery; PagerDuty will retry.")
		return
	} else if !first {
		writeStatus(w, "duplicate")
		return
	}
	if ev.Type == eventAcknowledged {
		err = h.sink.PagerAcknowledged(ctx, ev.DedupKey, ev.By, ev.At)
	} else {
		err = h.sink.PagerResolved(ctx, ev.DedupKey, ev.By, ev.At)
	}
	switch incidents.ErrorCode(err) {
	case "":
		writeStatus(w, "ok")
	case incidents.ENOTFOUND:
		// An incident of another tool on a shared service: not ours.
		h.log.DebugContext(ctx, "pagerduty webhook for an unknown dedup key", "event", ev.Type, "dedup_key", ev.DedupKey)
		writeStatus(w, "not_ours")
	case incidents.EINTERNAL, incidents.EUNAVAILABLE:
		h.markFailed(id)
		h.log.ErrorContext(ctx, "pagerduty webhook: apply", "event", ev.Type, "dedup_key", ev.DedupKey, "webhook_id", id, "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "Could not apply the change; PagerDuty will retry.")
	default:
		// Already resolved and the like: retrying cannot change the answer, and
		// PagerDuty disables a subscription after three dropped deliveries.
		h.log.InfoContext(ctx, "pagerduty webhook not applied", "event", ev.Type, "dedup_key", ev.DedupKey, "err", err)
		writeStatus(w, "not_applied")
	}
}

// firstDelivery says whether this X-Webhook-Id is new, or a retry of a
// delivery whose sink call failed here. Without an ID it cannot dedupe.
func (h *webhookHandler) firstDelivery(ctx context.Context, id string) (bool, error) {
	if id == "" || h.seen == nil {
		return true, nil
	}
	first, err := h.seen.Remember(ctx, "pagerduty:webhook:"+id)
	if err != nil || first {
		return first, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed[id] {
		delete(h.failed, id)
		return true, nil
	}
	return false, nil
}

func (h *webhookHandler) markFailed(id string) {
	if id == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) >= maxFailedIDs {
		clear(h.failed)
	}
	h.failed[id] = true
}

func writeStatus(w http.ResponseWriter, status string) {
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": status})
}
