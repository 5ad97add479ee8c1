package alerts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/reins-oss/reins/incidents"
)

// amMessage is the Alertmanager webhook (version 4) body, with the fields
// Grafana adds to it. Unknown fields are accepted: both grow new ones over
// releases (notification_reason, routeLabels) and an upgrade must not stop
// paging. groupLabels, commonLabels and commonAnnotations are left out on
// purpose: every alert carries its own labels, and decoding maps nobody
// reads was a tenth of the parse.
type amMessage struct {
	Version         string    `json:"version"`
	GroupKey        string    `json:"groupKey"`
	TruncatedAlerts int       `json:"truncatedAlerts"`
	Status          string    `json:"status"`
	Receiver        string    `json:"receiver"`
	ExternalURL     string    `json:"externalURL"`
	Alerts          []amAlert `json:"alerts"`

	// Grafana only.
	OrgID   int64  `json:"orgId"`
	Title   string `json:"title"`
	State   string `json:"state"`
	Message string `json:"message"`
}

type amAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     string            `json:"startsAt"`
	EndsAt       string            `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`

	// Grafana only.
	SilenceURL   string         `json:"silenceURL"`
	DashboardURL string         `json:"dashboardURL"`
	PanelURL     string         `json:"panelURL"`
	ImageURL     string         `json:"imageURL"`
	Values       map[string]any `json:"values"`
	ValueString  string         `json:"valueString"`
}

// ParseAlertmanager parses an Alertmanager webhook (version 4). Each alert of
// the group becomes one Alert whose fingerprint is Alertmanager's, so the
// group re-sent every repeat_interval is recognised as repeats.
func ParseAlertmanager(body []byte, _ http.Header, opts Options) ([]incidents.Alert, error) {
	var m amMessage
	if err := decode(body, &m, false); err != nil {
		return nil, err
	}
	if m.Version != "4" {
		hint := ""
		if m.Version == "1" && m.OrgID != 0 {
			hint = " (this looks like Grafana: use /webhooks/grafana)"
		}
		return nil, incidents.Errorf(incidents.EINVALID, "version: want \"4\" (Alertmanager webhook), got %q%s", m.Version, hint)
	}
	return convertAM(&m, SourceAlertmanager, opts)
}

// convertAM turns an Alertmanager-shaped message into alerts.
func convertAM(m *amMessage, source string, opts Options) ([]incidents.Alert, error) {
	opts = opts.withDefaults()
	if len(m.Alerts) == 0 {
		return nil, incidents.Errorf(incidents.EINVALID, "alerts: the group holds no alert")
	}
	if m.TruncatedAlerts < 0 {
		return nil, incidents.Errorf(incidents.EINVALID, "truncatedAlerts: want a count, got %d", m.TruncatedAlerts)
	}
	out := make([]incidents.Alert, 0, len(m.Alerts))
	for i := range m.Alerts {
		a, err := convertAMAlert(m, i, source, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func convertAMAlert(m *amMessage, i int, source string, opts Options) (incidents.Alert, error) {
	in := &m.Alerts[i]
	field := "alerts[" + strconv.Itoa(i) + "]"
	status := in.Status
	if status == "" {
		status = m.Status
	}
	if status != incidents.AlertFiring && status != incidents.AlertResolved {
		return incidents.Alert{}, incidents.Errorf(incidents.EINVALID, "%s.status: want firing or resolved, got %q", field, status)
	}
	agent, ok := findAgent(in.Labels, opts)
	if !ok {
		return incidents.Alert{}, noAgent(fmt.Sprintf("%s (alertname %q)", field, in.Labels["alertname"]),
			"add the label to the alert rule", opts)
	}
	startsAt, err := parseTime(field+".startsAt", in.StartsAt)
	if err != nil {
		return incidents.Alert{}, err
	}
	endsAt, err := parseTime(field+".endsAt", in.EndsAt)
	if err != nil {
		return incidents.Alert{}, err
	}
	if startsAt.IsZero() {
		startsAt = opts.Now
	}
	a := incidents.Alert{
		Source:      source,
		Fingerprint: in.Fingerprint,
		Agent:       agent,
		Status:      status,
		// The summary annotation is written for people ("Token spend 12x
		// baseline"); the alertname is a rule's identifier. It titles the
		// alert when there is no summary.
		Title:       firstOf(in.Annotations["summary"], in.Labels["alertname"], m.Title, "alert"),
		Summary:     firstOf(in.Annotations["summary"], in.Annotations["description"], in.Annotations["message"], in.ValueString),
		Severity:    labelSeverity(in.Labels["severity"]),
		Sessions:    findSessions(opts, in.Labels, in.Annotations),
		Labels:      ownMap(in.Labels), // decoded for this alert alone: no copy needed
		Annotations: ownMap(in.Annotations),
		StartsAt:    startsAt,
		ReceivedAt:  opts.Now,
		Count:       1,
	}
	if a.Fingerprint == "" {
		a.Fingerprint = labelsHash(in.Labels)
	}
	// Alertmanager sends endsAt in the future while firing (resolve_timeout);
	// only a resolved alert has really ended.
	if !endsAt.IsZero() && status == incidents.AlertResolved {
		a.EndsAt = &endsAt
	}
	a.Links = amLinks(in)
	a.Details = amDetails(m, i, source)
	return a, nil
}

// amLinks gathers the alert's *_url annotations and the sender's own links.
func amLinks(in *amAlert) []incidents.Link {
	var links linkSet
	links.addAnnotations(in.Annotations)
	links.add("source", in.GeneratorURL)
	links.add("panel", in.PanelURL)
	links.add("dashboard", in.DashboardURL)
	links.add("silence", in.SilenceURL)
	return links.links
}

// amDetails keeps where the notification came from and, for Grafana, the
// query values that fired.
func amDetails(m *amMessage, i int, source string) json.RawMessage {
	in := &m.Alerts[i]
	d := amDetail{Receiver: m.Receiver, GroupKey: m.GroupKey, ExternalURL: m.ExternalURL}
	if source == SourceGrafana {
		d.OrgID, d.ValueString, d.ImageURL, d.Values = m.OrgID, in.ValueString, in.ImageURL, in.Values
	}
	// Never drop silently: the incident must say some alerts of the group
	// were cut by max_alerts, so responders look at the source.
	if i == 0 && m.TruncatedAlerts > 0 {
		d.TruncatedAlerts = m.TruncatedAlerts
		d.Note = fmt.Sprintf("%d more alerts of this group were left out by the sender (max_alerts); see %s",
			m.TruncatedAlerts, firstOf(m.ExternalURL, "the source"))
	}
	if d.isZero() {
		return nil
	}
	b, err := json.Marshal(&d)
	if err != nil { // only values JSON cannot hold could cause this; none are put in
		return nil
	}
	return b
}

// amDetail is what amDetails keeps. Its fields are in the order of their
// names and all omitted when empty, so it encodes as details would the same
// map, a struct being several times faster to encode than a map.
type amDetail struct {
	ExternalURL     string         `json:"external_url,omitempty"`
	GroupKey        string         `json:"group_key,omitempty"`
	ImageURL        string         `json:"image_url,omitempty"`
	Note            string         `json:"note,omitempty"`
	OrgID           int64          `json:"org_id,omitempty"`
	Receiver        string         `json:"receiver,omitempty"`
	TruncatedAlerts int            `json:"truncated_alerts,omitempty"`
	ValueString     string         `json:"value_string,omitempty"`
	Values          map[string]any `json:"values,omitempty"`
}

func (d *amDetail) isZero() bool {
	return d.ExternalURL == "" && d.GroupKey == "" && d.ImageURL == "" && d.Note == "" && d.OrgID == 0 &&
		d.Receiver == "" && d.TruncatedAlerts == 0 && d.ValueString == "" && len(d.Values) == 0
}

// firstOf returns the first non-empty value.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
