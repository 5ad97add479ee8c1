package alerts

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// datadogMessage is the webhook payload reins expects from Datadog: a custom
// template (docs/alert-sources.md) whose every value is a string, as Datadog
// substitutes $VARIABLES into text. Unknown fields are accepted so teams may
// add their own.
type datadogMessage struct {
	ID            string `json:"id"`
	AlertID       string `json:"alert_id"`
	AggregKey     string `json:"aggreg_key"`
	AlertCycleKey string `json:"alert_cycle_key"`
	Transition    string `json:"alert_transition"`
	Priority      string `json:"alert_priority"`
	AlertType     string `json:"alert_type"`
	AlertTitle    string `json:"alert_title"`
	AlertScope    string `json:"alert_scope"`
	AlertMetric   string `json:"alert_metric"`
	Title         string `json:"title"`
	Body          string `json:"body"`
	Tags          string `json:"tags"`
	Link          string `json:"link"`
	Date          string `json:"date"`
	LastUpdated   string `json:"last_updated"`
	EventType     string `json:"event_type"`
	Hostname      string `json:"hostname"`
	Org           struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"org"`
}

// ParseDatadog parses a Datadog webhook sent with reins' template. The agent
// and sessions come from "key:value" tags ($TAGS and $ALERT_SCOPE); the
// fingerprint is $AGGREG_KEY (stable from trigger to recovery); "Recovered"
// resolves, every other transition fires.
func ParseDatadog(body []byte, _ http.Header, opts Options) ([]incidents.Alert, error) {
	opts = opts.withDefaults()
	var m datadogMessage
	if err := decode(body, &m, false); err != nil {
		return nil, err
	}
	if m.Title == "" && m.AlertTitle == "" {
		return nil, incidents.Errorf(incidents.EINVALID, "title: missing; the webhook payload must send \"title\": \"$EVENT_TITLE\" (see docs/alert-sources.md)")
	}
	labels := datadogTags(m.AlertScope, m.Tags)
	agent, ok := findAgent(labels, opts)
	if !ok {
		return nil, noAgent("the Datadog alert (tags "+strconv.Quote(m.Tags)+")",
			"tag the monitor agent:<name> and send \"tags\": \"$TAGS\" (see docs/alert-sources.md)", opts)
	}
	at, err := datadogDate(m.Date)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = opts.Now
	}
	status := incidents.AlertFiring
	if strings.EqualFold(strings.TrimSpace(m.Transition), "Recovered") {
		status = incidents.AlertResolved
	}
	a := incidents.Alert{
		Source:      SourceDatadog,
		Fingerprint: firstOf(m.AggregKey, datadogKey(m.AlertID, m.AlertScope), hashOf(m.Title)),
		Agent:       agent,
		Status:      status,
		Title:       firstOf(stripMarkers(m.AlertTitle), stripMarkers(m.Title)),
		Summary:     cleanDatadogBody(m.Body),
		Severity:    datadogSeverity(m),
		Sessions:    findSessions(opts, labels),
		Labels:      labels,
		StartsAt:    at,
		ReceivedAt:  opts.Now,
		Count:       1,
	}
	if status == incidents.AlertResolved {
		a.EndsAt = &at
	}
	var links linkSet
	links.add("Datadog", m.Link)
	a.Links = links.links
	a.Details = details(map[string]any{
		"event_id": m.ID, "monitor_id": m.AlertID, "alert_cycle_key": m.AlertCycleKey,
		"transition": m.Transition, "priority": m.Priority, "alert_type": m.AlertType,
		"metric": m.AlertMetric, "event_type": m.EventType, "hostname": m.Hostname,
		"org": m.Org.Name, "last_updated": m.LastUpdated,
	})
	return []incidents.Alert{a}, nil
}

// datadogTags reads "key:value" tag lists into labels. A key given twice
// keeps both values, comma-joined, so "session_id:s-1,session_id:s-2" names
// two sessions. Tags without a value are kept with an empty one.
func datadogTags(lists ...string) map[string]string {
	labels := map[string]string{}
	for _, list := range lists {
		for _, tag := range splitList(list) {
			k, v, _ := strings.Cut(tag, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			old, seen := labels[k]
			switch {
			case !seen || old == "":
				labels[k] = v
			case v != "" && !containsValue(old, v):
				labels[k] = old + "," + v
			}
		}
	}
	if len(labels) == 0 {
		return nil
	}
	return labels
}

func containsValue(list, v string) bool {
	for _, x := range splitList(list) {
		if x == v {
			return true
		}
	}
	return false
}

// datadogKey identifies one group of a multi-alert monitor when $AGGREG_KEY
// is not in the template.
func datadogKey(alertID, scope string) string {
	if alertID == "" {
		return ""
	}
	if scope == "" {
		return "monitor-" + alertID
	}
	return "monitor-" + alertID + "-" + hashOf(scope)
}

// datadogDate reads $DATE: epoch milliseconds, as a string.
func datadogDate(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, incidents.Errorf(incidents.EINVALID, "date: want epoch milliseconds as a string (\"$DATE\"), got %q", v)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// datadogSeverity uses the monitor priority, else the alert type.
func datadogSeverity(m datadogMessage) string {
	switch strings.ToUpper(strings.TrimSpace(m.Priority)) {
	case "P1":
		return incidents.SeverityCritical
	case "P2":
		return incidents.SeverityError
	case "P3":
		return incidents.SeverityWarning
	case "P4", "P5":
		return incidents.SeverityInfo
	}
	switch strings.ToLower(strings.TrimSpace(m.AlertType)) {
	case "warning":
		return incidents.SeverityWarning
	case "info", "success":
		return incidents.SeverityInfo
	}
	if strings.Contains(strings.ToLower(m.Transition), "warn") {
		return incidents.SeverityWarning
	}
	return incidents.SeverityError
}

// markers are the bracketed prefixes Datadog puts before event titles
// ("[Triggered] [P1] Token spend").
var markers = regexp.MustCompile(`^(?i)(\s*\[(triggered|re-triggered|recovered|warn|re-warn|no data|re-no data|renotify|p[1-5])( on [^\]]*)?\])+\s*`)

func stripMarkers(title string) string {
	return strings.TrimSpace(markers.ReplaceAllString(title, ""))
}

// cleanDatadogBody drops the %%% markers wrapping Datadog's Markdown.
func cleanDatadogBody(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "%%%", ""))
}
