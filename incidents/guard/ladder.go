package guard

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// The containment ladder (docs/containment.md): what a breach does is its
// SLA's on_breach, or, with a ladder, the rung the breach has climbed to.
// This file only decides; incidents.Service.AutoHalt does it.

// Rung is what a breach asks for: its SLA's on_breach, or with a ladder
// the rung it climbed to. recent holds the agent's earlier breaches of the
// same SLA (any order; b itself may be among them and is skipped).
//
// Climbing: each earlier breach of the same session within the SLA's
// ladder_window, and each other session that breached the SLA within it,
// is one rung up, capped at the top rung:
//
//	rung = ladder[min(max(same-session repeats, other sessions), len(ladder)-1)]
//
// So with [restrict, halt_session, halt_agent] and a 10 min window: a
// session's first breach restricts it, its second within 10 min halts the
// session; a second session breaching within those 10 min is halted at its
// first breach, and a third session halts the agent.
func Rung(sla *ownership.SLA, b Breach, recent []Breach) string {
	if sla == nil || len(sla.Ladder) == 0 {
		switch {
		case b.Action != "":
			return b.Action
		case sla != nil && sla.OnBreach != "":
			return sla.OnBreach
		}
		return ownership.OnBreachAlert
	}
	window := sla.LadderWindow
	if window <= 0 {
		window = ownership.DefaultLadderWindow
	}
	since := b.At.Add(-window)
	repeats, others := 0, map[string]bool{}
	for _, r := range recent {
		// Earlier breaches only: by ID where both are stored (IDs follow
		// insertion), else by time.
		earlier := r.At.Before(b.At) || (r.ID != 0 && b.ID != 0 && r.ID < b.ID)
		if r.SLA != b.SLA || r.At.Before(since) || !earlier || (r.ID == b.ID && b.ID != 0) {
			continue
		}
		if r.Session == b.Session {
			repeats++
		} else {
			others[r.Session] = true
		}
	}
	step := max(repeats, len(others))
	return sla.Ladder[min(step, len(sla.Ladder)-1)]
}

// climbs says whether a session that breached sla repeats times already may
// breach it again: only with a ladder, once per batch of steps (the rung
// just asked for is being applied), and not past the top rung.
func climbs(sla *ownership.SLA, repeats int, firedThisBatch bool) bool {
	return len(sla.Ladder) > 1 && !firedThisBatch && repeats < len(sla.Ladder)
}

// climb sets b.Action to the rung its SLA's ladder has reached, reading the
// agent's recent breaches; without a ladder it is on_breach as evaluated.
func (g *Guard) climb(ctx context.Context, b Breach) Breach {
	a := g.cfg.Registry.Current().Agent(b.Agent)
	if a == nil {
		return b
	}
	sla := a.SLA(b.SLA)
	if sla == nil || len(sla.Ladder) == 0 {
		return b
	}
	recent, err := g.cfg.Store.FindBreaches(ctx, b.Agent, ladderRecent(sla, b.At), 1000)
	if err != nil {
		// Without the history the first rung is the safe reading: it is
		// what the SLA asks of any breach, and a repeat climbs again.
		g.cfg.Log.Error("guard: read recent breaches for the ladder", "agent", b.Agent, "sla", b.SLA, "err", err)
	}
	b.Action = Rung(sla, b, recent)
	return b
}

// RepeatKey is the SLA column a breach is stored under: the SLA's name for
// the first breach, "name#n" for the n-th of the same session, so each
// repeat is its own row under the (agent, SLA, session) key.
func (b Breach) RepeatKey() string {
	if b.Repeat <= 1 {
		return b.SLA
	}
	return b.SLA + "#" + strconv.Itoa(b.Repeat)
}

// SplitRepeat reads a stored SLA column back into the SLA's name and the
// repeat (1 for the first breach). SLA names cannot hold '#' (the loader
// refuses it), so the first '#' starts the repeat.
func SplitRepeat(key string) (string, int) {
	name, n, ok := strings.Cut(key, "#")
	if !ok {
		return key, 1
	}
	r, err := strconv.Atoi(n)
	if err != nil || r < 2 {
		return key, 1
	}
	return name, r
}

// ladderRecent bounds how far back Rung's breaches are read.
func ladderRecent(sla *ownership.SLA, now time.Time) time.Time {
	w := sla.LadderWindow
	if w <= 0 {
		w = ownership.DefaultLadderWindow
	}
	return now.Add(-w)
}
