package sessions

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// Entry is one numbered step of a timeline with what makes it notable.
type Entry struct {
	N     int // the step's number: Step.N, else its 1-based position
	Step  Step
	Flags []string
}

// Flags of a step in a timeline.
const (
	FlagError        = "error"
	FlagOutsideScope = "outside tool_scope"
	FlagOutsideBlast = "outside the declared blast radius"
)

// edge is how many of the first and last steps a summarised timeline keeps.
const edge = 3

// Timeline numbers a session's steps and flags the notable ones. When the
// session has more than limit steps it is summarised: the first and last
// steps, every error, every call to a blast-radius system and every tool
// outside the agent's tool_scope or blast radius; omitted counts the rest.
// a may be nil (an agent no longer configured).
func Timeline(rec Record, a *ownership.Agent, limit int) (entries []Entry, omitted int) {
	all := make([]Entry, len(rec.Steps))
	for i, st := range rec.Steps {
		n := i + 1
		if st.N > 0 {
			n = int(st.N) // the number the alert and every view give it
		}
		all[i] = Entry{N: n, Step: st, Flags: flags(st, a)}
	}
	if limit <= 0 || len(all) <= limit {
		return all, 0
	}
	for i, e := range all {
		if i < edge || i >= len(all)-edge || len(e.Flags) > 0 || e.Step.System != "" {
			entries = append(entries, e)
		}
	}
	return entries, len(all) - len(entries)
}

func flags(st Step, a *ownership.Agent) []string {
	var out []string
	if st.Error {
		out = append(out, FlagError)
	}
	if st.Tool == "" || a == nil {
		return out
	}
	if in, declared := a.ToolInScope(st.Tool); declared && !in {
		out = append(out, FlagOutsideScope)
	}
	if st.System == "" && a.DeclaresTools() {
		out = append(out, FlagOutsideBlast)
	}
	return out
}

// Outside returns the tool calls of steps that match no blast-radius entry,
// when the agent declares tools at all.
func Outside(steps []Step, a *ownership.Agent) []Step {
	if a == nil || !a.DeclaresTools() {
		return nil
	}
	var out []Step
	for _, st := range steps {
		if st.IsTool() && st.System == "" {
			out = append(out, st)
		}
	}
	return out
}

// Evidence is what the sessions show about one blast-radius system.
type Evidence struct {
	System      string
	Calls       int
	Tools       []string // distinct, in first-call order
	First, Last time.Time
}

// EvidenceOf gathers the calls of steps to system.
func EvidenceOf(system string, steps []Step) Evidence {
	ev := Evidence{System: system}
	seen := map[string]bool{}
	for _, st := range steps {
		if st.System != system {
			continue
		}
		ev.Calls++
		if !seen[st.Tool] {
			seen[st.Tool] = true
			ev.Tools = append(ev.Tools, st.Tool)
		}
		if ev.First.IsZero() || st.Start.Before(ev.First) {
			ev.First = st.Start
		}
		if st.Start.After(ev.Last) {
			ev.Last = st.Start
		}
	}
	return ev
}

// String says what was recorded, in one line.
func (ev Evidence) String() string {
	if ev.Calls == 0 {
		return "No call to " + ev.System + " was recorded in the sessions."
	}
	return fmt.Sprintf("%s recorded to %s (%s), first %s, last %s UTC.", plural(ev.Calls, "call"), ev.System,
		strings.Join(ev.Tools, ", "), ev.First.UTC().Format("15:04:05"), ev.Last.UTC().Format("15:04:05"))
}

// FormatEntry renders one timeline line: number, time, kind, tool or model,
// tokens, duration, system and flags.
func FormatEntry(e Entry) string {
	st := e.Step
	var b strings.Builder
	fmt.Fprintf(&b, "%d. %s %s", e.N, st.Start.UTC().Format("15:04:05.000"), st.Kind)
	switch {
	case st.Tool != "":
		b.WriteString(" " + st.Tool)
	case st.Model != "":
		b.WriteString(" " + st.Model)
	case st.Name != "" && st.Name != st.Kind:
		b.WriteString(" " + st.Name)
	}
	if st.Tokens() > 0 {
		fmt.Fprintf(&b, " · %s in / %s out tokens", Thousands(st.InputTokens), Thousands(st.OutputTokens))
	}
	fmt.Fprintf(&b, " · %s", st.Duration.Round(time.Millisecond))
	if st.System != "" {
		b.WriteString(" · " + st.System)
	}
	if st.Error {
		b.WriteString(" · ERROR")
		if st.ErrorType != "" {
			b.WriteString(" " + st.ErrorType)
		}
	} else {
		b.WriteString(" · ok")
	}
	for _, f := range e.Flags {
		if f != FlagError {
			b.WriteString(" · " + f)
		}
	}
	return b.String()
}

// FormatTotals renders a session's totals in one line.
func FormatTotals(t Totals) string {
	return fmt.Sprintf("%s · %s · %s · %s tokens (%s in / %s out) · %s · %s–%s UTC",
		plural(int(t.Steps), "step"), plural(int(t.ToolCalls), "tool call"), plural(int(t.Errors), "error"),
		Thousands(t.TotalTokens()), Thousands(t.InputTokens), Thousands(t.OutputTokens), FormatCost(t),
		t.First.UTC().Format("2006-01-02 15:04:05"), t.Last.UTC().Format("15:04:05"))
}

// FormatCost is the cost in USD, saying when some models had no price.
func FormatCost(t Totals) string {
	switch {
	case t.Cost == 0 && t.Unpriced > 0:
		return "no price"
	case t.Unpriced > 0:
		return fmt.Sprintf("$%.4f + %s without a price", t.Cost, plural(int(t.Unpriced), "step"))
	}
	return fmt.Sprintf("$%.4f", t.Cost)
}

// Text renders a record for the terminal: totals, link and every stored step.
func Text(rec Record, a *ownership.Agent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Session %s  (agent %s)\n%s\n", rec.Totals.Session, rec.Totals.Agent, FormatTotals(rec.Totals))
	if rec.Link != "" {
		fmt.Fprintf(&b, "Trace: %s\n", rec.Link)
	}
	if dropped := rec.Totals.Steps - rec.Totals.Stored; dropped > 0 {
		fmt.Fprintf(&b, "%s dropped by the step cap (tool calls are always kept)\n", plural(int(dropped), "middle step"))
	}
	entries, _ := Timeline(rec, a, 0)
	for _, e := range entries {
		b.WriteString(FormatEntry(e) + "\n")
	}
	return b.String()
}

// Thousands writes n with thousands separators.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return Thousands(int64(n)) + " " + what + "s"
}
