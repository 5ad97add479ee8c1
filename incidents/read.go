package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// FindIncident returns one incident; ENOTFOUND when it does not exist.
func (s *Service) FindIncident(ctx context.Context, id int64) (*Incident, error) {
	return s.store.FindIncident(ctx, id)
}

// IncidentByChannel returns the incident whose Slack channel this is;
// ENOTFOUND outside incident channels.
func (s *Service) IncidentByChannel(ctx context.Context, channelID string) (*Incident, error) {
	inc, err := s.store.FindIncidentByChannel(ctx, channelID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "This is not an incident channel. Run the command in the incident's channel.")
	}
	return inc, err
}

// FindIncidents returns incidents matching f, newest first.
func (s *Service) FindIncidents(ctx context.Context, f IncidentFilter) ([]*Incident, error) {
	if f.Limit < 0 || f.Offset < 0 {
		return nil, Errorf(EINVALID, "Limit and offset must not be negative.")
	}
	return s.store.FindIncidents(ctx, f)
}

// Timeline returns an incident's events, oldest first.
func (s *Service) Timeline(ctx context.Context, id int64) ([]*Event, error) {
	if _, err := s.store.FindIncident(ctx, id); err != nil {
		return nil, err
	}
	events, err := s.store.FindEvents(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load timeline of incident %d: %w", id, err)
	}
	return events, nil
}

// Alerts returns an incident's alerts.
func (s *Service) Alerts(ctx context.Context, id int64) ([]*Alert, error) {
	alerts, err := s.store.FindAlerts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load alerts of incident %d: %w", id, err)
	}
	return alerts, nil
}

// Halts returns halts and resumes, newest first; agent "" means every agent,
// incidentID 0 every incident.
func (s *Service) Halts(ctx context.Context, agent string, incidentID int64) ([]*Halt, error) {
	if agent != "" {
		if ag := FindAgent(s.Registry(), agent); ag != nil {
			agent = ag.Name // an alias finds the agent's halts
		}
	}
	halts, err := s.store.FindHalts(ctx, agent, incidentID)
	if err != nil {
		return nil, fmt.Errorf("load halts: %w", err)
	}
	return halts, nil
}

// Remember returns true the first time an idempotency key is seen (a Slack
// retry, a PagerDuty webhook ID, a double click).
func (s *Service) Remember(ctx context.Context, key string) (bool, error) {
	first, err := s.store.Remember(ctx, key, s.clock.Now())
	if err != nil {
		return false, fmt.Errorf("remember %s: %w", key, err)
	}
	return first, nil
}

// IdempotencyKeep is how long an idempotency key is kept. The longest
// window a key guards is a day: the ownership audit's key is per UTC day,
// Slack retries an event for minutes, PagerDuty a webhook for hours, a
// drill's key is per minute. A week is that with room to spare.
const IdempotencyKeep = 7 * 24 * time.Hour

// PruneIdempotencyKeys deletes the idempotency keys first seen more than
// IdempotencyKeep before now (a scheduled job). It returns how many went.
func (s *Service) PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.store.PruneIdempotencyKeys(ctx, now.Add(-IdempotencyKeep))
	if err != nil {
		return n, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return n, nil
}

// NoChannelReason says why an incident has no Slack channel and will not
// get one without help: Slack is not configured, or reins gave up creating
// it (with the error). "" means it has a channel, or one is still coming.
func (s *Service) NoChannelReason(ctx context.Context, inc *Incident) (string, error) {
	if inc.SlackChannelID != "" {
		return "", nil
	}
	if s.chat == nil {
		return fmt.Sprintf("Incident #%d has no Slack channel: Slack is not configured in this reins (SLACK_BOT_TOKEN is unset). "+
			"Follow it in reins: %s", inc.ID, s.IncidentLink(inc.ID).URL), nil
	}
	events, err := s.store.FindEvents(ctx, inc.ID)
	if err != nil {
		return "", fmt.Errorf("load timeline of incident %d: %w", inc.ID, err)
	}
	for _, e := range slices.Backward(events) {
		if e.Kind != EventDeliveryFailed {
			continue
		}
		var d struct {
			Kind  string `json:"kind"`
			Error string `json:"error"`
		}
		if json.Unmarshal(e.Data, &d) == nil && d.Kind == KindCreateChannel {
			return fmt.Sprintf("Incident #%d has no Slack channel: reins gave up creating it (%s). "+
				"Create a channel by hand and follow the incident in reins: %s", inc.ID, d.Error, s.IncidentLink(inc.ID).URL), nil
		}
	}
	return "", nil
}
