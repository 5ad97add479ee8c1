package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/integrations/api"
	"github.com/reins-oss/reins/integrations/langfuse"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

// sessionRoutes serves the OTLP intake (docs/telemetry.md); the session record API is integrations/api's.
func (m *Main) sessionRoutes(mux *routeMux) {
	maxBytes, _ := strconv.ParseInt(m.Config.OTLPMaxBytes, 10, 64)
	inflight, _ := strconv.ParseInt(m.Config.OTLPMaxInflightBytes, 10, 64)
	maxSpans, _ := strconv.Atoi(m.Config.OTLPMaxSpans)
	bulk, _ := strconv.Atoi(m.Config.OTLPBulkWrites) // "": 0, otlp's default
	maxAttrs, _ := strconv.Atoi(m.Config.OTLPMaxAttributes)
	m.intake = otlp.NewHandler(otlp.Config{
		Token:            m.Config.OTLPToken,
		Credentials:      m.otlpCredentials,
		MaxBytes:         maxBytes,
		MaxInflightBytes: inflight,
		MaxSpans:         maxSpans,
		MaxAttributes:    maxAttrs,
		Resolve:          func(name string) *ownership.Agent { return m.Registry.Current().Agent(name) },
		Names: func() otlp.Names {
			t := m.Registry.Current().Telemetry
			return otlp.Names{Session: t.SessionAttributes, Tool: t.ToolAttributes, Agent: t.AgentAttributes}
		},
		Recorder: m.Sessions,
		Log:      m.Log,
		Observe:  m.Sessions.Recorded,
		Metrics:  m.metrics().otlp,
		// A small request's writes (a crossing span exported as it
		// ended) pass the bulk lane, and on SQLite the queued writers.
		Urgent:     sqlstore.Urgent,
		BulkWrites: bulk,
	})
	mux.Handle("POST /v1/traces", m.intake)
}

// sweepHeldSpans records the held spans whose trace's session became known
// without their request seeing it (a race between replicas, a crash), has
// the guard judge them, and refuses those held past telemetry.hold.max_age.
func (m *Main) sweepHeldSpans(ctx context.Context) error {
	joined, expired, err := m.Sessions.Sweep(ctx)
	if len(joined) > 0 {
		sort.SliceStable(joined, func(i, j int) bool { return joined[i].Start.Before(joined[j].Start) })
		totals, rerr := m.Sessions.Record(ctx, joined)
		if rerr != nil {
			if herr := m.Sessions.Rehold(ctx, joined); herr != nil {
				m.Log.Error("put back held spans that could not be recorded", "spans", len(joined), "err", herr)
			}
			return rerr
		}
		m.Sessions.Recorded(ctx, joined, totals)
	}
	if m.intake != nil {
		m.intake.Refused(ctx, expired)
	}
	if h := m.Sessions.Holds(); h != nil {
		if spans, bytes, serr := h.HeldStats(ctx); serr == nil {
			m.metrics().otlp.HeldSpans.Set(float64(spans))
			m.metrics().otlp.HeldBytes.Set(float64(bytes))
		}
	}
	return err
}

// sessionPuller is the pull source for agents whose sessions.source is not otlp.
func (m *Main) sessionPuller() sessions.Puller { return langfuse.NewClient(m.Getenv) }

func cmdSession(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("session")
	format := fs.String("format", "text", "text or json")
	agent := fs.String("agent", "", "the agent whose session it is (needed when two agents use the ID)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"give one session ID"}
	}
	if *format != "text" && *format != "json" {
		return usageError{"--format must be text or json"}
	}
	m, err := e.openMain(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	rec, err := m.Sessions.Session(ctx, *agent, pos[0])
	var amb *sessions.AmbiguousError
	if errors.As(err, &amb) {
		return usageError{fmt.Sprintf("%d agents have a session %q (%s): name one with --agent, e.g. reins session --agent %s %s",
			len(amb.Agents), amb.ID, strings.Join(amb.Agents, ", "), amb.Agents[0], amb.ID)}
	}
	if errors.Is(err, sessions.ErrNotFound) {
		return errors.New(api.NoRecord(ctx, m.Sessions, m.Clock.Now(), pos[0]))
	} else if err != nil {
		return err
	}
	refused, _ := m.Sessions.Refusals(ctx, m.Clock.Now().Add(-sessions.RefusalRetention), pos[0], 20)
	if *format == "json" {
		if rec.Steps == nil {
			rec.Steps = []sessions.Step{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	}
	_, err = fmt.Fprint(e.stdout, sessions.Text(rec, m.Registry.Current().Agent(rec.Totals.Agent)))
	if err == nil && len(refused) > 0 {
		_, err = fmt.Fprintln(e.stdout, "Also: "+sessions.DescribeRefusals(refused)+".")
	}
	return err
}
