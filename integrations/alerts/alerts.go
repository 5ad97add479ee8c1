package alerts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// Sources, as they appear in routes, metrics and incidents.Alert.Source.
const (
	SourceAlertmanager = "alertmanager"
	SourceGrafana      = "grafana"
	SourceDatadog      = "datadog"
	SourceGeneric      = "generic"
	SourceLangfuse     = "langfuse"
)

// Options are the registry settings a parser needs, read per request because
// the registry may be reloaded.
type Options struct {
	AgentLabels   []string // where an alert names its agent; default [agent]
	SessionLabels []string // labels or annotations holding session IDs; default [session_id, session_ids]
	// Resolve maps an agent name or alias to its canonical name; nil resolves nothing.
	Resolve func(name string) (canonical string, ok bool)
	Now     time.Time // ReceivedAt of every alert; zero means time.Now()
}

// Parser turns one webhook body into alerts. Errors are *incidents.Error with
// code EINVALID and a message naming the offending field.
type Parser func(body []byte, h http.Header, opts Options) ([]incidents.Alert, error)

// parsers is the registry of alert sources, in route order. Adding a source
// is its file (parser and Source constant), its test and fixtures, and one
// line here; cmd/reins serves POST /webhooks/<source> for every entry.
var parsers = []struct {
	source string
	parse  Parser
}{
	{SourceAlertmanager, ParseAlertmanager},
	{SourceGrafana, ParseGrafana},
	{SourceDatadog, ParseDatadog},
	{SourceGeneric, ParseGeneric},
	{SourceLangfuse, ParseLangfuse},
}

// Sources returns every source with a parser, for wiring the routes.
func Sources() []string {
	out := make([]string, 0, len(parsers))
	for _, p := range parsers {
		out = append(out, p.source)
	}
	return out
}

// ParserFor returns the parser of a source, for wiring the routes.
func ParserFor(source string) (Parser, bool) {
	for _, p := range parsers {
		if p.source == source {
			return p.parse, true
		}
	}
	return nil, false
}

// withDefaults fills the settings reins.yaml leaves out.
func (o Options) withDefaults() Options {
	if len(o.AgentLabels) == 0 {
		o.AgentLabels = []string{"agent"}
	}
	if len(o.SessionLabels) == 0 {
		o.SessionLabels = []string{"session_id", "session_ids"}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	return o
}

func (o Options) resolve(name string) (string, bool) {
	if o.Resolve == nil || name == "" {
		return "", false
	}
	return o.Resolve(name)
}

// findAgent picks the agent per docs/alert-sources.md: the first of AgentLabels whose value
// is an agent's name or alias (returned canonical), else the value of the first
// of those labels present, which opens an unowned incident. A label holding a
// comma-separated list (Datadog tags repeated) is tried value by value.
func findAgent(labels map[string]string, o Options) (agent string, found bool) {
	var first string
	for _, key := range o.AgentLabels {
		for _, v := range splitList(labels[key]) {
			if canonical, ok := o.resolve(v); ok {
				return canonical, true
			}
			if first == "" {
				first = v
			}
		}
	}
	return first, first != ""
}

// noAgent is the refusal for an alert that names no agent at all.
// fix says what to change at the source.
func noAgent(where, fix string, o Options) error {
	return incidents.Errorf(incidents.EINVALID,
		"%s names no agent: none of the labels %s is set (alerts.agent_labels in reins.yaml); %s",
		where, strings.Join(o.AgentLabels, ", "), fix)
}

// findSessions collects session IDs from the SessionLabels of each map in
// turn (labels, then annotations): comma-separated, trimmed, deduplicated,
// first-seen order kept.
func findSessions(o Options, maps ...map[string]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, key := range o.SessionLabels {
		for _, m := range maps {
			for _, s := range splitList(m[key]) {
				if !seen[s] {
					seen[s] = true
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// splitList splits a comma-separated value, dropping blanks.
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// linkSet gathers links in order, without repeats, and only http(s) URLs:
// alert text is untrusted and ends up as clickable links in Slack and PagerDuty.
type linkSet struct {
	links []incidents.Link
}

func (s *linkSet) add(text, raw string) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return
	}
	// A handful of links: a scan beats allocating a set.
	if slices.ContainsFunc(s.links, func(l incidents.Link) bool { return l.URL == raw }) {
		return
	}
	s.links = append(s.links, incidents.Link{Text: text, URL: raw})
}

// addAnnotations adds every annotation named *_url, in name order, labelled
// by the name without the suffix ("runbook_url" -> "runbook").
func (s *linkSet) addAnnotations(annotations map[string]string) {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		if strings.HasSuffix(k, "_url") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.add(strings.ReplaceAll(strings.TrimSuffix(k, "_url"), "_", " "), annotations[k])
	}
}

// labelSeverity maps the common `severity` label vocabulary onto reins'.
func labelSeverity(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "critical", "crit", "page", "p1", "fatal", "emergency":
		return incidents.SeverityCritical
	case "warning", "warn", "p3":
		return incidents.SeverityWarning
	case "info", "informational", "notice", "p4", "p5", "none":
		return incidents.SeverityInfo
	default: // error, high, p2, unset: an alert about an agent is an error until told otherwise
		return incidents.SeverityError
	}
}

// hashOf is a short stable digest, for fingerprints a source does not give.
func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// labelsHash fingerprints a label set the way Alertmanager does in spirit:
// sorted name=value pairs.
func labelsHash(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, k, labels[k])
	}
	return hashOf(parts...)
}

// parseTime reads an RFC 3339 time; "" and Go's zero time (Alertmanager's
// endsAt while firing) give the zero time.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, incidents.Errorf(incidents.EINVALID, "%s: %q is not an RFC 3339 time", field, v)
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t.UTC(), nil
}

// details marshals source-specific values, leaving out empty ones; keys come
// out sorted, so equal alerts give equal bytes.
func details(m map[string]any) json.RawMessage {
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			delete(m, k)
		case string:
			if x == "" {
				delete(m, k)
			}
		case int:
			if x == 0 {
				delete(m, k)
			}
		case int64:
			if x == 0 {
				delete(m, k)
			}
		}
	}
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil { // only values JSON cannot hold could cause this; none are put in
		return nil
	}
	return b
}

// ownMap is m, which its caller owns, or nil when empty.
func ownMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// decode unmarshals body into v and turns encoding/json's errors into
// user-facing ones naming the field. strict refuses unknown fields.
func decode(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if rest := body[dec.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		return incidents.Errorf(incidents.EINVALID, "body holds more than one JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return incidents.Errorf(incidents.EINVALID, "%s: want %s, got JSON %s", field, typeName(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return incidents.Errorf(incidents.EINVALID, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return incidents.Errorf(incidents.EINVALID, "%s is not a field reins knows; remove it",
			strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return incidents.Errorf(incidents.EINVALID, "malformed JSON: %v", err)
	}
}

// typeName renders a Go type as a JSON reader would say it.
func typeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	default:
		return fmt.Sprintf("an object (%s)", goType)
	}
}
