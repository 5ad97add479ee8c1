package incidents

import (
	"context"
	"fmt"

	"github.com/reins-oss/reins/incidents/outbox"
)

// KindPageAck acknowledges the PagerDuty incident of a page, so the
// escalation stops once a responder took the incident without PagerDuty.
const KindPageAck = "page_ack"

// Acknowledge records that a responder took the incident (from the CLI or
// the API, when Slack and PagerDuty's own buttons are out of reach): the
// timeline says who, the page is acknowledged in PagerDuty so it stops
// escalating, and the channel and summary are updated. A resolved incident
// is ECONFLICT; a second acknowledgement changes nothing and is ECONFLICT too,
// naming who acknowledged first.
func (s *Service) Acknowledge(ctx context.Context, actor Actor, incidentID int64) (*Incident, error) {
	var inc *Incident
	var conflict error
	err := s.RetryTx(ctx, func(q Queries) error {
		var err error
		conflict = nil
		if inc, err = q.FindIncident(ctx, incidentID); err != nil {
			return err
		}
		switch {
		case inc.Status == StatusResolved:
			conflict = Errorf(ECONFLICT, "Incident #%d is already resolved.", inc.ID)
			return nil
		case inc.AckedAt != nil:
			conflict = Errorf(ECONFLICT, "Incident #%d was already acknowledged by %s at %s.", inc.ID, inc.AckedBy,
				inc.AckedAt.UTC().Format("2006-01-02 15:04 UTC"))
			return nil
		}
		now := s.clock.Now()
		inc.AckedAt, inc.AckedBy = &now, ActorLabel(actor)
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return fmt.Errorf("record acknowledgement of incident %d: %w", inc.ID, err)
		}
		text := "Acknowledged by " + ActorLabel(actor)
		if err := AppendEvent(ctx, q, inc.ID, now, EventAcknowledged, actor, text, nil); err != nil {
			return err
		}
		key := func(what string) string { return fmt.Sprintf("inc-%d/%s", inc.ID, what) }
		if s.pager != nil && inc.PagerDutyKey != "" {
			if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, KindPageAck, key(KindPageAck), nil); err != nil {
				return err
			}
		}
		if s.chat == nil {
			return nil
		}
		if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPost, key("acknowledged"), Message{Style: StyleInfo, Title: text}); err != nil {
			return err
		}
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneRefresh, KindUpdateSummary, key("update_summary/acknowledged"), nil)
	})
	if err != nil {
		return nil, fmt.Errorf("acknowledge incident %d: %w", incidentID, err)
	}
	if conflict != nil {
		return inc, conflict
	}
	s.Kick()
	return inc, nil
}

// deliverPageAck acknowledges the incident's page in PagerDuty.
func (s *pageSteps) deliverPageAck(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "acknowledge")
	if err != nil {
		return err
	}
	if err := s.pager.Send(ctx, Page{Action: "acknowledge", RoutingKey: page.RoutingKey, DedupKey: page.DedupKey}); err != nil {
		return fmt.Errorf("acknowledge page of incident %d: %w", inc.ID, err)
	}
	return nil
}
