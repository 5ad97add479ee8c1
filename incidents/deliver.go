package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Outbox kinds: what a worker does with an item.
const (
	KindCreateChannel = "create_channel" // create #inc-42-agent-slug, remember its ID
	KindPostSummary   = "post_summary"   // post and pin the summary, remember its ts
	KindUpdateSummary = "update_summary" // update the summary in place (debounced)
	KindSetTopic      = "set_topic"      // channel topic: agent, severity, title
	KindInvite        = "invite"         // owners and kill authority into the channel
	KindBookmark      = "bookmark"       // runbook and first session links
	KindAnnounce      = "announce"       // one line in the team's (or governance) channel
	KindPost          = "post"           // payload: a Message; Channel "" is the incident channel
	KindPage          = "page"           // PagerDuty trigger to the kill authority
	KindRepage        = "repage"         // trigger again, "HALT FAILED"; payload: repagePayload
	KindPageResolve   = "page_resolve"   // PagerDuty resolve
)

const (
	claimBatch   = 20
	pollInterval = 500 * time.Millisecond
	backoffBase  = 2 * time.Second
	backoffCap   = 5 * time.Minute
	maxErrorText = 500
	// waitForChannel is how long a post for an incident channel that does not
	// exist yet waits before its next try.
	waitForChannel = 30 * time.Second
)

// deliverFunc performs one outbox item. It returns nil when done, a
// *RetryAfterError or plain error to try again later, or a *PermanentError to
// give up now. It must be safe to run twice: a worker may crash between the
// side effect and recording it.
type deliverFunc func(ctx context.Context, it *OutboxItem) error

// deliverers maps every outbox kind to its worker function.
func (s *Service) deliverers() map[string]deliverFunc {
	m := map[string]deliverFunc{
		KindCreateChannel: s.deliverCreateChannel,
		KindPostSummary:   s.deliverSummary,
		KindUpdateSummary: s.deliverSummaryUpdate,
		KindSetTopic:      s.deliverTopic,
		KindInvite:        s.deliverInvite,
		KindBookmark:      s.deliverBookmarks,
		KindAnnounce:      s.deliverAnnounce,
		KindPost:          s.deliverPost,
		KindPage:          s.deliverPage,
		KindRepage:        s.deliverRepage,
		KindPageResolve:   s.deliverPageResolve,
		KindPageAck:       s.deliverPageAck,
	}
	for k, f := range s.aftermathDeliverers() {
		m[k] = f
	}
	return m
}

// DeliverDue makes one pass over a lane: it claims the items that are due,
// delivers each, and records the outcome (done, retry with backoff, or buried
// after Config.DeliveryAttempts or a permanent failure). It returns how many
// items it finished, delivered or given up on; 0 means the lane is idle.
func (s *Service) DeliverDue(ctx context.Context, lane string) (int, error) {
	items, err := s.store.ClaimOutbox(ctx, lane, s.clock.Now(), s.cfg.DeliveryLease, claimBatch)
	if err != nil {
		return 0, fmt.Errorf("claim %s outbox: %w", lane, err)
	}
	dels := s.deliverers()
	finished := 0
	for i, it := range items {
		if ctx.Err() != nil {
			// Shutting down: hand the rest back now rather than let their
			// leases hold up every later item of their incidents.
			s.release(items[i:])
			break
		}
		done, err := s.deliverOne(ctx, dels, it)
		if err != nil {
			return finished, err
		}
		if done {
			finished++
		}
	}
	return finished, nil
}

func (s *Service) deliverOne(ctx context.Context, dels map[string]deliverFunc, it *OutboxItem) (bool, error) {
	f, ok := dels[it.Kind]
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no worker for outbox kind %q", it.Kind))
	} else {
		// An item under way is finished even when shutdown begins (a lease
		// left behind would hold up its incident's later items), and well
		// inside the lease so no other worker starts the same item.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DeliveryLease*2/3)
		err = f(dctx, it)
		cancel()
	}
	// The outcome is recorded even when shutdown has begun.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := s.clock.Now()
	if err == nil {
		if err := s.store.CompleteOutbox(ctx, it.ID, now); err != nil {
			return false, fmt.Errorf("complete outbox item %d (%s): %w", it.ID, it.Key, err)
		}
		outboxDelivered.WithLabelValues(it.Lane, it.Kind).Inc()
		deliveryLatency.WithLabelValues(it.Lane).Observe(now.Sub(it.CreatedAt).Seconds())
		return true, nil
	}
	var perm *PermanentError
	if errors.As(err, &perm) || it.Attempts+1 >= s.cfg.DeliveryAttempts {
		return true, s.bury(ctx, it, err)
	}
	next := now.Add(backoff(it.Attempts+1, err))
	s.log.Warn("outbox delivery failed, will retry", "key", it.Key, "attempt", it.Attempts+1, "next", next, "err", err)
	if err := s.store.RetryOutbox(ctx, it.ID, next, errorText(err)); err != nil {
		return false, fmt.Errorf("reschedule outbox item %d (%s): %w", it.ID, it.Key, err)
	}
	outboxRetries.WithLabelValues(it.Lane, it.Kind).Inc()
	return false, nil
}

// release hands claimed, undelivered items back for immediate delivery by the
// next worker, here or on another replica.
func (s *Service) release(items []*OutboxItem) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, it := range items {
		if err := s.store.RetryOutbox(ctx, it.ID, s.clock.Now(), "released at shutdown"); err != nil {
			s.log.Warn("release outbox item at shutdown", "key", it.Key, "err", err)
		}
	}
}

// backoff is exponential with full jitter on its upper half, never less than
// what the other side asked for with Retry-After.
func backoff(attempt int, err error) time.Duration {
	d := backoffCap
	if attempt <= 20 {
		d = min(backoffBase<<(attempt-1), backoffCap)
	}
	d = d/2 + rand.N(d/2+1)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = ra.After
	}
	return d
}

// bury gives up on an item visibly: the item is kept as dead, the incident's
// timeline says what was lost, and the governance channel is told.
func (s *Service) bury(ctx context.Context, it *OutboxItem, cause error) error {
	s.log.Error("outbox delivery given up", "key", it.Key, "attempts", it.Attempts+1, "err", cause)
	now := s.clock.Now()
	text := errorText(cause)
	err := s.retryTx(ctx, func(q Queries) error {
		if err := q.BuryOutbox(ctx, it.ID, now, text); err != nil {
			return fmt.Errorf("bury outbox item %d (%s): %w", it.ID, it.Key, err)
		}
		if it.IncidentID != 0 {
			kind := EventDeliveryFailed
			if it.Lane == LaneUrgent {
				kind = EventPageFailed
			}
			data := map[string]any{"kind": it.Kind, "key": it.Key, "attempts": it.Attempts + 1, "error": text}
			if err := appendEvent(ctx, q, it.IncidentID, now, kind, System,
				fmt.Sprintf("Gave up on %s after %d attempts: %s", describeKind(it.Kind), it.Attempts+1, text), data); err != nil {
				return err
			}
		}
		return s.enqueueBuryNotices(ctx, q, it, text)
	})
	if err != nil {
		return err
	}
	outboxFailed.WithLabelValues(it.Lane, it.Kind).Inc()
	return nil
}

// enqueueBuryNotices tells the governance channel, and for a lost page the
// incident channel too, since its responders believe the page went out.
func (s *Service) enqueueBuryNotices(ctx context.Context, q Queries, it *OutboxItem, text string) error {
	if s.chat == nil || strings.HasPrefix(it.Key, governanceKeyPrefix) {
		return nil // a lost governance notice is not announced again, or it could loop
	}
	title := fmt.Sprintf("reins gave up on %s", describeKind(it.Kind))
	if it.IncidentID != 0 {
		title += fmt.Sprintf(" for incident #%d", it.IncidentID)
	}
	fields := []Field{{Label: "Attempts", Value: fmt.Sprint(it.Attempts + 1)}, {Label: "Error", Value: text}}
	if it.Kind == KindPost {
		if m, err := decodeMessage(it.Payload); err == nil {
			fields = append(fields, Field{Label: "Lost message", Value: firstNonEmpty(m.Title, m.Text)})
		}
	}
	if gov := s.registry().Slack.GovernanceChannel; gov != "" {
		m := Message{Channel: gov, Style: StyleDanger, Title: title, Fields: fields}
		if it.IncidentID != 0 {
			m.Links = []Link{s.incidentLink(it.IncidentID)}
		}
		key := fmt.Sprintf("%s%d", governanceKeyPrefix, it.ID)
		if err := s.enqueue(ctx, q, 0, LaneChat, KindPost, key, m); err != nil {
			return err
		}
	}
	if it.Lane == LaneUrgent && it.IncidentID != 0 {
		m := Message{Style: StyleDanger, Title: "⚠️ " + title + ": the kill authority may not have been paged", Fields: fields}
		return s.enqueue(ctx, q, it.IncidentID, LaneChat, KindPost, fmt.Sprintf("inc-%d/page_failed/%d", it.IncidentID, it.ID), m)
	}
	return nil
}

const governanceKeyPrefix = "governance/buried/"

func describeKind(kind string) string {
	switch kind {
	case KindCreateChannel:
		return "creating the incident channel"
	case KindPage:
		return "the PagerDuty page"
	case KindRepage:
		return "the PagerDuty re-page"
	case KindPageResolve:
		return "resolving the PagerDuty incident"
	case KindPost:
		return "a Slack message"
	}
	return "Slack step " + kind
}

func errorText(err error) string { return clip(err.Error(), maxErrorText) }

// RunDelivery runs workers for a lane until ctx is done. Each worker polls
// every half second, and wakes at once when Kick is called after a commit.
func (s *Service) RunDelivery(ctx context.Context, lane string, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() { s.deliveryLoop(ctx, lane) })
	}
	wg.Wait()
}

func (s *Service) deliveryLoop(ctx context.Context, lane string) {
	w := s.waker()
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	for ctx.Err() == nil {
		wake := w.wait() // taken before the pass, so a kick during it is not lost
		n, err := s.DeliverDue(ctx, lane)
		if err != nil && ctx.Err() == nil {
			s.log.Error("outbox delivery pass failed", "lane", lane, "err", err)
		} else if n > 0 {
			continue // finishing an item may have made the incident's next one due
		}
		timer.Reset(pollInterval)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
	}
}

// Kick wakes every delivery worker of this Service, so that an item committed
// now is delivered within milliseconds rather than at the next poll.
func (s *Service) Kick() { s.waker().kick() }

func (s *Service) waker() *waker { return &s.wake }

// waker is a broadcast: kick closes the channel every waiter holds.
type waker struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *waker) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *waker) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// enqueue adds an outbox item, due now, inside the caller's transaction. An
// item whose key is already queued is not queued again: keys are the
// idempotency of every side effect.
func (s *Service) enqueue(ctx context.Context, q Queries, incID int64, lane, kind, key string, payload any) error {
	return s.enqueueAt(ctx, q, incID, lane, kind, key, payload, s.clock.Now())
}

func (s *Service) enqueueAt(ctx context.Context, q Queries, incID int64, lane, kind, key string, payload any, due time.Time) error {
	item, err := s.outboxItem(incID, lane, kind, key, payload, due)
	if err != nil {
		return err
	}
	if _, err := q.EnqueueOutbox(ctx, item); err != nil {
		return fmt.Errorf("enqueue %s: %w", key, err)
	}
	return nil
}

// outboxItem is the outbox row for one side effect, due at due.
func (s *Service) outboxItem(incID int64, lane, kind, key string, payload any, due time.Time) (*OutboxItem, error) {
	raw := []byte(`{}`)
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload for %s: %w", kind, key, err)
		}
		raw = b
	}
	return newOutboxItem(incID, lane, kind, key, raw, due, s.clock.Now()), nil
}

// newOutboxItem is the pending outbox row for one side effect with an
// encoded payload, queued at now and due at due.
func newOutboxItem(incID int64, lane, kind, key string, payload json.RawMessage, due, now time.Time) *OutboxItem {
	if kind == KindUpdateSummary {
		lane = LaneRefresh // see LaneRefresh: a waiting refresh must not hold back thread posts
	}
	return &OutboxItem{IncidentID: incID, Lane: lane, Kind: kind, Key: key, Payload: payload,
		State: OutboxPending, NextAttemptAt: due, CreatedAt: now}
}

const txAttempts = 4

// retryTx runs fn in a transaction, again after a short pause when the store
// reports a conflict that a fresh attempt resolves (unique violation,
// serialization failure, SQLite busy, stale incident version).
func (s *Service) retryTx(ctx context.Context, fn func(q Queries) error) error {
	var err error
	for attempt := range txAttempts {
		if err = s.store.InTx(ctx, fn); err == nil || !retryable(err) || attempt == txAttempts-1 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5<<attempt) * time.Millisecond):
		}
	}
	return err
}

// retryable says whether a transaction failed on a conflict. The store may
// mark its errors with a Retryable() bool method; driver errors that do not
// are recognised by their text, since incidents imports no driver.
func retryable(err error) bool {
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	if ErrorCode(err) == ECONFLICT {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"unique constraint", "duplicate key", "could not serialize", "deadlock detected",
		"database is locked", "sqlite_busy"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
