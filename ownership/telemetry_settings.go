package ownership

import (
	"fmt"
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TelemetrySettings is the top-level `telemetry:` section: attribute names
// of in-house conventions, tried before the known families
// (docs/telemetry.md), and the bounds of the spans held while their trace's
// session is not yet known.
type TelemetrySettings struct {
	SessionAttributes []string // span or resource attributes holding the session ID
	ToolAttributes    []string // span attributes holding a tool call's tool name
	AgentAttributes   []string // span or resource attributes holding the agent's name or alias
	Hold              HoldSettings
}

// HoldSettings bound the spans kept while their trace's session is unknown.
type HoldSettings struct {
	MaxAge   time.Duration // default 10m: older unclaimed spans are refused
	MaxSpans int           // default 100,000 across every replica's store
	MaxBytes int64         // default 64 MiB of held span bodies
}

// Defaults of telemetry.hold.
const (
	DefaultHoldMaxAge   = 10 * time.Minute
	DefaultHoldMaxSpans = 100_000
	DefaultHoldMaxBytes = 64 << 20
)

// MaxTelemetryAttributes bounds each attribute list: every span tries each.
const MaxTelemetryAttributes = 16

func defaultTelemetry() TelemetrySettings {
	return TelemetrySettings{Hold: HoldSettings{MaxAge: DefaultHoldMaxAge, MaxSpans: DefaultHoldMaxSpans,
		MaxBytes: DefaultHoldMaxBytes}}
}

func (p *parser) telemetry(n *yaml.Node, t *TelemetrySettings) {
	*t = defaultTelemetry()
	f, _ := p.mapping(n, "telemetry", []string{"session_attributes", "tool_attributes", "agent_attributes", "hold"})
	for _, l := range []struct {
		key string
		dst *[]string
	}{{"session_attributes", &t.SessionAttributes}, {"tool_attributes", &t.ToolAttributes},
		{"agent_attributes", &t.AgentAttributes}} {
		v := f.val(l.key)
		if v == nil {
			continue
		}
		names := p.strList(v, "telemetry."+l.key)
		if len(names) > MaxTelemetryAttributes {
			p.errorf(v, "telemetry.%s: at most %d attribute names", l.key, MaxTelemetryAttributes)
			names = names[:MaxTelemetryAttributes]
		}
		seen := map[string]bool{}
		for i, name := range names {
			at := v
			if line := p.pos[fmt.Sprintf("telemetry.%s[%d]", l.key, i)]; line > 0 {
				at = &yaml.Node{Line: line}
			}
			switch {
			case len(name) > 255 || strings.ContainsAny(name, " \t\r\n"):
				p.errorf(at, "telemetry.%s: %s is not an attribute name (no spaces, at most 255 bytes)", l.key, quote(name))
			case seen[name]:
				p.errorf(at, "telemetry.%s: %s is listed twice", l.key, quote(name))
			default:
				seen[name] = true
				*l.dst = append(*l.dst, name)
			}
		}
	}
	h, _ := p.mapping(f.val("hold"), "telemetry.hold", []string{"max_age", "max_spans", "max_bytes"})
	if v := h.val("max_age"); v != nil {
		t.Hold.MaxAge = p.duration(v, "telemetry.hold.max_age", DefaultHoldMaxAge)
	}
	if v := h.val("max_spans"); v != nil {
		if n := p.number(v, "telemetry.hold.max_spans"); n != nil {
			if *n < 0 || *n != math.Trunc(*n) || *n > 10_000_000 {
				p.errorf(v, "telemetry.hold.max_spans: %v is not a count from 0 to 10,000,000 (0 holds nothing: spans without a session are refused at once)", *n)
			} else {
				t.Hold.MaxSpans = int(*n)
			}
		}
	}
	if v := h.val("max_bytes"); v != nil {
		if n := p.number(v, "telemetry.hold.max_bytes"); n != nil {
			if *n < 0 || *n != math.Trunc(*n) || *n > 1<<34 {
				p.errorf(v, "telemetry.hold.max_bytes: %v is not a byte count from 0 to 16 GiB", *n)
			} else {
				t.Hold.MaxBytes = int64(*n)
			}
		}
	}
}

// String lists the in-house names, for logs.
func (t TelemetrySettings) String() string {
	return fmt.Sprintf("session %v, tool %v, agent %v", t.SessionAttributes, t.ToolAttributes, t.AgentAttributes)
}
