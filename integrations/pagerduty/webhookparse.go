package pagerduty

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// v3 webhook event types reins acts on.
const (
	eventAcknowledged = "incident.acknowledged"
	eventResolved     = "incident.resolved"
)

// webhookEvent is what reins needs of one v3 webhook.
type webhookEvent struct {
	ID       string    // event.id
	Type     string    // event.event_type
	DedupKey string    // event.data.incident_key: the dedup_key reins sent
	By       string    // event.agent.summary, or "PagerDuty" when no one is named
	At       time.Time // event.occurred_at, UTC
}

// relevant says whether the event changes an incident reins may own.
func (e webhookEvent) relevant() bool {
	return (e.Type == eventAcknowledged || e.Type == eventResolved) && e.DedupKey != ""
}

// v3Payload is the part of the v3 webhook format reins reads.
type v3Payload struct {
	Event *struct {
		ID           string `json:"id"`
		EventType    string `json:"event_type"`
		ResourceType string `json:"resource_type"`
		OccurredAt   string `json:"occurred_at"`
		Agent        *struct {
			Summary string `json:"summary"`
			Type    string `json:"type"`
		} `json:"agent"`
		Data json.RawMessage `json:"data"`
	} `json:"event"`
}

type v3Incident struct {
	Type        string `json:"type"`
	IncidentKey string `json:"incident_key"`
}

// parseWebhook reads a v3 webhook body. It is strict only about what reins
// acts on: an acknowledge or resolve must say when it happened; every other
// event type is returned with its type alone, to be ignored.
func parseWebhook(body []byte) (webhookEvent, error) {
	var p v3Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return webhookEvent{}, fmt.Errorf("decode PagerDuty webhook: %w", err)
	}
	if p.Event == nil {
		return webhookEvent{}, errors.New("decode PagerDuty webhook: no event object")
	}
	ev := webhookEvent{ID: p.Event.ID, Type: p.Event.EventType}
	if ev.Type != eventAcknowledged && ev.Type != eventResolved {
		return ev, nil
	}
	var inc v3Incident
	if len(p.Event.Data) > 0 {
		if err := json.Unmarshal(p.Event.Data, &inc); err != nil {
			return webhookEvent{}, fmt.Errorf("decode PagerDuty webhook %s data: %w", ev.Type, err)
		}
	}
	if inc.Type != "" && inc.Type != "incident" {
		return webhookEvent{}, fmt.Errorf("decode PagerDuty webhook %s: data is a %q, want an incident", ev.Type, inc.Type)
	}
	at, err := time.Parse(time.RFC3339Nano, p.Event.OccurredAt)
	if err != nil {
		return webhookEvent{}, fmt.Errorf("decode PagerDuty webhook %s: occurred_at: %w", ev.Type, err)
	}
	ev.At = at.UTC()
	ev.DedupKey = inc.IncidentKey
	ev.By = "PagerDuty"
	if p.Event.Agent != nil && strings.TrimSpace(p.Event.Agent.Summary) != "" {
		ev.By = strings.TrimSpace(p.Event.Agent.Summary)
	}
	return ev, nil
}
