package incidents

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/words"
)

const (
	// waitForChannel is how long a post for an incident channel that does not
	// exist yet waits before its next try.
	waitForChannel = 30 * time.Second
)

// DestinationSlack is where the chat and refresh lanes deliver. A Slack
// outage holds those lanes back behind one probe at a time and never the
// urgent lane (PagerDuty), which keeps per-item backoff.
const DestinationSlack = "slack"

// Destinations maps each lane that delivers to an outside system which can
// fail as a whole to that system (outbox.Config.Destinations).
func Destinations() map[string]string {
	return map[string]string{outbox.LaneChat: DestinationSlack, outbox.LaneRefresh: DestinationSlack}
}

// registerHandlers gives the outbox a handler for every kind. Each group
// registers its kinds in the file that delivers them: a new kind is its
// constant and handler there plus one line in its group's function.
func (s *Service) registerHandlers(w *outbox.Worker) {
	chat, page := &chatSteps{s.Core}, &pageSteps{s.Core}
	chat.chatHandlers(w.Handle)      // deliver_chat.go
	page.pageHandlers(w.Handle)      // deliver_page.go
	chat.aftermathHandlers(w.Handle) // deliver_aftermath.go
}

// chatSteps delivers the Slack steps of every use case (deliver_chat.go,
// deliver_aftermath.go); pageSteps the PagerDuty ones (deliver_page.go,
// ack.go). Each holds only the Core: a handler reads what it delivers from
// the store, never from a use case.
type (
	chatSteps struct{ *Core }
	pageSteps struct{ *Core }
)

// bury gives up on an item visibly: the item is kept as dead, the incident's
// timeline says what was lost, and the governance channel is told.
// It is the outbox worker's Config.Bury.
func (s *Service) bury(ctx context.Context, it *outbox.Item, text string) error {
	now := s.clock.Now()
	return s.RetryTx(ctx, func(q Queries) error {
		if err := q.BuryOutbox(ctx, it.ID, now, text); err != nil {
			return fmt.Errorf("bury outbox item %d (%s): %w", it.ID, it.Key, err)
		}
		if it.IncidentID != 0 {
			kind := EventDeliveryFailed
			if it.Lane == outbox.LaneUrgent {
				kind = EventPageFailed
			}
			data := map[string]any{"kind": it.Kind, "key": it.Key, "attempts": it.Attempts + 1, "error": text}
			if err := AppendEvent(ctx, q, it.IncidentID, now, kind, System,
				fmt.Sprintf("Gave up on %s after %s: %s", describeKind(it.Kind), words.Count(it.Attempts+1, "attempt"), text), data); err != nil {
				return err
			}
		}
		return s.enqueueBuryNotices(ctx, q, it, text)
	})
}

// enqueueBuryNotices tells the governance channel, and for a lost page the
// incident channel too, since its responders believe the page went out.
func (s *Service) enqueueBuryNotices(ctx context.Context, q outbox.Store, it *outbox.Item, text string) error {
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
			fields = append(fields, Field{Label: "Lost message", Value: FirstNonEmpty(m.Title, m.Text)})
		}
	}
	if gov := s.Registry().Slack.GovernanceChannel; gov != "" {
		m := Message{Channel: gov, Style: StyleDanger, Title: title, Fields: fields}
		if it.IncidentID != 0 {
			m.Links = []Link{s.IncidentLink(it.IncidentID)}
		}
		key := fmt.Sprintf("%s%d", governanceKeyPrefix, it.ID)
		if err := s.Enqueue(ctx, q, 0, outbox.LaneChat, KindPost, key, m); err != nil {
			return err
		}
	}
	if it.Lane == outbox.LaneUrgent && it.IncidentID != 0 {
		m := Message{Style: StyleDanger, Title: "⚠️ " + title + ": the kill authority may not have been paged", Fields: fields}
		return s.Enqueue(ctx, q, it.IncidentID, outbox.LaneChat, KindPost, fmt.Sprintf("inc-%d/page_failed/%d", it.IncidentID, it.ID), m)
	}
	return nil
}

const governanceKeyPrefix = "governance/buried/"

func describeKind(kind string) string {
	switch kind {
	case KindCreateChannel:
		return "creating the incident's Slack channel"
	case KindPage:
		return "the PagerDuty page"
	case KindRepage:
		return "the PagerDuty re-page"
	case KindQueuePage:
		return "the PagerDuty page about breaches waiting for the automatic-halt budget"
	case KindPageResolve:
		return "resolving the PagerDuty incident"
	case KindPageAck:
		return "acknowledging the PagerDuty incident"
	case KindPost:
		return "a Slack message"
	case KindPostSummary:
		return "posting the incident summary in Slack"
	case KindUpdateSummary:
		return "updating the incident summary in Slack"
	case KindSetTopic, KindResolvedTopic:
		return "setting the Slack channel topic"
	case KindInvite:
		return "inviting people to the Slack channel"
	case KindBookmark:
		return "bookmarking links in the Slack channel"
	case KindAnnounce:
		return "the Slack announcement"
	case KindPostChecklistParent, KindPostChecklistItem:
		return "posting the checklist in Slack"
	case KindPostPostmortemParent, KindPostPostmortemQuestion:
		return "posting the postmortem questions in Slack"
	case KindUploadPostmortem:
		return "uploading the postmortem to Slack"
	case KindReminder:
		return "the Slack reminder"
	}
	// A kind added later without a label here still says where it goes by
	// its lane's name, never a guess at the system.
	return "delivery step " + kind
}
