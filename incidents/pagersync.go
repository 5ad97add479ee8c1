package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
)

// PagerAcknowledged records that the page for an incident was acknowledged in
// PagerDuty. Only the first acknowledgement is kept; later ones change
// nothing. A dedup key reins did not issue is ENOTFOUND, which the webhook
// handler treats as "not ours".
func (s *Service) PagerAcknowledged(ctx context.Context, dedupKey, by string, at time.Time) error {
	if at.IsZero() {
		at = s.clock.Now()
	}
	queued := false
	err := s.RetryTx(ctx, func(q Queries) error {
		queued = false
		inc, err := q.FindIncidentByPagerKey(ctx, dedupKey)
		if err != nil {
			return err
		}
		if inc.AckedAt != nil {
			return nil
		}
		inc.AckedAt, inc.AckedBy = &at, by
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return fmt.Errorf("record acknowledgement of incident %d: %w", inc.ID, err)
		}
		actor := Actor{Kind: ActorPagerDuty, ID: by}
		if err := AppendEvent(ctx, q, inc.ID, at, EventAcknowledged, actor,
			"Page acknowledged in PagerDuty by "+by, map[string]any{"dedup_key": dedupKey}); err != nil {
			return err
		}
		if s.chat == nil {
			return nil
		}
		queued = true
		m := Message{Style: StyleInfo, Title: "Page acknowledged in PagerDuty by " + by}
		if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPost, fmt.Sprintf("inc-%d/acknowledged", inc.ID), m); err != nil {
			return err
		}
		key := fmt.Sprintf("inc-%d/update_summary/acknowledged", inc.ID)
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneRefresh, KindUpdateSummary, key, nil)
	})
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", dedupKey, err)
	}
	if queued {
		s.Kick()
	}
	return nil
}

// PagerResolved notes that the PagerDuty incident was resolved. The reins
// incident stays open: only a responder resolving it in reins closes it, since
// the checklist and postmortem follow from that; the channel is told so.
func (s *Service) PagerResolved(ctx context.Context, dedupKey, by string, at time.Time) error {
	if at.IsZero() {
		at = s.clock.Now()
	}
	queued := false
	err := s.RetryTx(ctx, func(q Queries) error {
		queued = false
		inc, err := q.FindIncidentByPagerKey(ctx, dedupKey)
		if err != nil {
			return err
		}
		actor := Actor{Kind: ActorPagerDuty, ID: by}
		if err := AppendEvent(ctx, q, inc.ID, at, EventNote, actor,
			"Resolved in PagerDuty by "+by, map[string]any{"dedup_key": dedupKey}); err != nil {
			return err
		}
		if s.chat == nil || inc.Status != StatusOpen {
			return nil
		}
		queued = true
		m := Message{Style: StyleInfo, Title: "The PagerDuty incident was resolved by " + by,
			Text: "This incident stays open in reins until someone runs /agent resolve here."}
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPost, fmt.Sprintf("inc-%d/pd_resolved/%d", inc.ID, at.UnixNano()), m)
	})
	if err != nil {
		return fmt.Errorf("note PagerDuty resolve of %s: %w", dedupKey, err)
	}
	if queued {
		s.Kick()
	}
	return nil
}
