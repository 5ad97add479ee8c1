package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/api"
	"github.com/reins-oss/reins/ownership"
)

const (
	incidentsPerPage = 50
	stepsPerPage     = 100
	drillWeeks       = 26
)

// layout is what every page template gets.
type layout struct {
	Title string
	User  *session
	Nav   string // incidents | agents
	Page  any
}

func parseTemplates(person func(string) string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		// person shows a Slack user (U01ALICE, slack:U01ALICE, or a line
		// naming them) by name; persons does so for a list, joined.
		"person": person,
		"persons": func(list []string) string {
			out := make([]string, len(list))
			for i, s := range list {
				out[i] = person(s)
			}
			return strings.Join(out, ", ")
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"whenp": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"dur":    fmtDur,
		"span":   func(s *incidents.Span) string { return spanText(s) },
		"commas": commas,
		"usd":    func(f float64) string { return "$" + strconv.FormatFloat(f, 'f', 4, 64) },
		"join":   strings.Join,
		"count":  func(n int, noun string) string { return words.Count(n, noun) },
		"prev":   func(n int) int { return n - 1 },
		"next":   func(n int) int { return n + 1 },
		"esc":    url.PathEscape,
		"query":  url.QueryEscape,
		"safeURL": func(s string) template.URL {
			// Links from alerts are shown only when they are plain http(s).
			if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
				return template.URL(u.String())
			}
			return ""
		},
	}
	out := map[string]*template.Template{}
	for _, name := range []string{"off", "error", "signedout", "incidents", "incident", "session", "agents", "agent"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web view templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}

func spanText(s *incidents.Span) string {
	if s == nil {
		return "—"
	}
	return fmtDur(time.Duration(*s))
}

// render writes a page; the template runs into a buffer first so a failure
// midway is a clean 500, not half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, page any) {
	title := map[string]string{"off": "Web view off", "error": "Error", "signedout": "Signed out",
		"incidents": "Incidents", "agents": "Agents"}[name]
	nav := "incidents"
	if name == "agents" || name == "agent" {
		nav = "agents"
	}
	if t, ok := page.(interface{ title() string }); ok {
		title = t.title()
	}
	if m, ok := page.(map[string]any); ok && m["Title"] != nil {
		title = m["Title"].(string)
	}
	var buf bytes.Buffer
	if err := h.tmpl[name].ExecuteTemplate(&buf, "layout", layout{Title: title, User: s, Nav: nav, Page: page}); err != nil {
		h.log.Error("web view: render", "page", name, "err", err)
		http.Error(w, "The page could not be rendered; the error is in reins' log.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// domainError answers a domain error as a page, with the status the API
// would answer (api.StatusOf: the one table).
func (h *Handler) domainError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := api.StatusOf(err)
	msg := incidents.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		h.log.Error("web view: request failed", "path", r.URL.Path, "err", err)
		msg = "Something went wrong reading this page; the error is in reins' log."
	}
	h.render(w, r, status, "error", s, map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// ---- incidents list ----

type incidentsPage struct {
	Agent, Status string
	Agents        []string
	Rows          []*incidents.Incident
	Next          template.URL // the next page, "" on the last
	First         bool
}

func (h *Handler) incidentsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := &incidentsPage{Agent: strings.TrimSpace(q.Get("agent")), Status: q.Get("status"),
		Agents: h.cfg.Incidents.Registry().Names()}
	if p.Status != incidents.StatusOpen && p.Status != incidents.StatusResolved {
		p.Status = ""
	}
	if p.Agent != "" {
		if ag := h.cfg.Incidents.Registry().Agent(p.Agent); ag != nil {
			p.Agent = ag.Name // an alias lists the agent's incidents
		}
	}
	// Two offsets, so "open first" pages through the open incidents, then the
	// resolved ones, each with one indexed query and no count.
	oOff, rOff := atoiMin0(q.Get("o")), atoiMin0(q.Get("r"))
	p.First = oOff == 0 && rOff == 0
	ctx := r.Context()
	next := url.Values{}
	if p.Agent != "" {
		next.Set("agent", p.Agent)
	}
	if p.Status != "" {
		next.Set("status", p.Status)
	}
	statuses := []string{incidents.StatusOpen, incidents.StatusResolved}
	if p.Status != "" {
		statuses = []string{p.Status}
	}
	offs := map[string]*int{incidents.StatusOpen: &oOff, incidents.StatusResolved: &rOff}
	more := false
	for _, st := range statuses {
		room := incidentsPerPage - len(p.Rows)
		if room <= 0 {
			break
		}
		rows, err := h.cfg.Incidents.FindIncidents(ctx, incidents.IncidentFilter{Agent: p.Agent, Status: st,
			Limit: room + 1, Offset: *offs[st]})
		if err != nil {
			h.domainError(w, r, s, err)
			return
		}
		more = len(rows) > room
		if more {
			rows = rows[:room]
		}
		p.Rows = append(p.Rows, rows...)
		*offs[st] += len(rows)
		if more {
			break
		}
		more = st == incidents.StatusOpen && len(statuses) == 2 // resolved may follow
	}
	if more && len(p.Rows) > 0 {
		next.Set("o", strconv.Itoa(oOff))
		next.Set("r", strconv.Itoa(rOff))
		p.Next = template.URL("/?" + next.Encode())
	}
	h.render(w, r, http.StatusOK, "incidents", s, p)
}

func atoiMin0(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// ---- one incident ----

type incidentPage struct {
	Inc          *incidents.Incident
	PM           *incidents.Postmortem
	Info         *incidents.AgentInfo // nil: unowned
	Firing       int
	PostmortemMD template.HTML
	Answered     int
	CSRF         string // the forms' token; "" when answers are read-only
	Questions    []questionRow
	Notice       string // what the last form did, from ?done=
	PMAnswered   int
}

// questionRow is one postmortem question with its answer, for its form.
type questionRow struct {
	N                   int
	Key, Question, Hint string
	Answer              string
}

func (p *incidentPage) title() string { return fmt.Sprintf("#%d %s", p.Inc.ID, p.Inc.Title) }

func (h *Handler) pathID(w http.ResponseWriter, r *http.Request, s *session) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.render(w, r, http.StatusNotFound, "error", s, map[string]any{"Title": "Not found",
			"Message": "Incident numbers are whole numbers, like /incidents/42."})
		return 0, false
	}
	return id, true
}

func (h *Handler) incidentPage(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := h.pathID(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	inc, err := h.cfg.Incidents.FindIncident(ctx, id)
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	pm, err := h.cfg.Postmortems.Postmortem(ctx, id)
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	p := &incidentPage{Inc: inc, PM: pm}
	if !inc.Unowned {
		if info, err := h.cfg.Incidents.Who(ctx, inc.Agent); err == nil {
			p.Info = info
		}
	}
	for _, d := range pm.Detection {
		if d.Status == incidents.AlertFiring {
			p.Firing++
		}
	}
	for _, b := range pm.BlastRadius {
		if b.Choice != "" {
			p.Answered++
		}
	}
	p.PostmortemMD = markdownHTML(aftermath.RenderMarkdown(pm))
	for i, q := range incidents.PostmortemQuestions() {
		p.Questions = append(p.Questions, questionRow{N: i + 1, Key: q.Key, Question: q.Question, Hint: q.Hint, Answer: pm.Answer(q.Key)})
		if pm.Answer(q.Key) != "" {
			p.PMAnswered++
		}
	}
	if h.cfg.Answers != nil {
		p.CSRF = h.csrfToken(s)
	}
	p.Notice = map[string]string{"checklist": "Checklist answer saved.", "started": "Checklist started.",
		"postmortem": "Postmortem answer saved."}[r.URL.Query().Get("done")]
	h.render(w, r, http.StatusOK, "incident", s, p)
}

var md = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough))

// markdownHTML renders Markdown without raw HTML (goldmark drops it unless
// told otherwise) and without javascript: links (goldmark refuses them).
func markdownHTML(src string) template.HTML {
	var buf bytes.Buffer
	if err := md.Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(buf.String()) //nolint:gosec // goldmark escapes text and drops raw HTML
}

func (h *Handler) postmortemDownload(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := h.pathID(w, r, s)
	if !ok {
		return
	}
	pm, err := h.cfg.Postmortems.Postmortem(r.Context(), id)
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="incident-%d-postmortem.md"`, id))
	_, _ = w.Write([]byte(aftermath.RenderMarkdown(pm)))
}

// ---- one session ----

type sessionPage struct {
	S          *SessionView
	Chart      *waterfall
	Rows       []stepRow
	Tokens     int64
	Cost       float64
	Errors     int
	Breaches   []string
	Duration   time.Duration
	Page, Last int
}

type stepRow struct {
	N int
	StepView
	Offset time.Duration
	Class  string
}

func (p *sessionPage) title() string { return "Session " + p.S.ID }

func (h *Handler) sessionPage(w http.ResponseWriter, r *http.Request, s *session) {
	if h.cfg.Sessions == nil {
		h.render(w, r, http.StatusNotFound, "error", s, map[string]any{"Title": "No session records",
			"Message": "This reins keeps no session records yet: send traces to /v1/traces (OTLP) to record sessions."})
		return
	}
	sv, err := h.cfg.Sessions.Session(r.Context(), r.URL.Query().Get("agent"), r.PathValue("id"))
	var amb *sessions.AmbiguousError
	if errors.As(err, &amb) {
		// Two agents' sessions share the ID: ask which, never guess.
		type choice struct {
			URL  template.URL
			Text string
		}
		var choices []choice
		for _, a := range amb.Agents {
			choices = append(choices, choice{
				URL:  template.URL("/sessions/" + url.PathEscape(amb.ID) + "?agent=" + url.QueryEscape(a)),
				Text: "Session " + amb.ID + " of " + a})
		}
		h.render(w, r, http.StatusConflict, "error", s, map[string]any{"Title": "Which agent's session?",
			"Message": fmt.Sprintf("%d agents have a session %s. Choose one:", len(amb.Agents), amb.ID),
			"Choices": choices})
		return
	}
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	var systems []string
	if ag := h.cfg.Incidents.Registry().Agent(sv.Agent); ag != nil {
		for _, b := range ag.BlastRadius {
			systems = append(systems, b.System)
		}
	}
	p := &sessionPage{S: sv, Chart: buildWaterfall(sv.Steps, systems)}
	steps := slices.Clone(sv.Steps)
	slices.SortStableFunc(steps, func(a, b StepView) int { return a.Start.Compare(b.Start) })
	start, end := sv.Start, sv.End
	for _, st := range steps {
		p.Tokens += st.Tokens()
		p.Cost += st.CostUSD
		if st.Error != "" {
			p.Errors++
		}
		if st.Breach != "" && !slices.Contains(p.Breaches, st.Breach) {
			p.Breaches = append(p.Breaches, st.Breach)
		}
		if start.IsZero() || st.Start.Before(start) {
			start = st.Start
		}
		if st.End().After(end) {
			end = st.End()
		}
	}
	p.Duration = end.Sub(start)
	p.Last = max(1, (len(steps)+stepsPerPage-1)/stepsPerPage)
	p.Page = min(max(1, atoiMin0(r.URL.Query().Get("page"))), p.Last)
	lo := (p.Page - 1) * stepsPerPage
	for i := lo; i < min(lo+stepsPerPage, len(steps)); i++ {
		row := stepRow{N: i + 1, StepView: steps[i], Offset: steps[i].Start.Sub(start)}
		if steps[i].N > 0 {
			row.N = int(steps[i].N) // the number alerts and Slack give the step
		}
		if steps[i].Error != "" || steps[i].Breach != "" {
			row.Class = "bad"
		}
		p.Rows = append(p.Rows, row)
	}
	h.render(w, r, http.StatusOK, "session", s, p)
}

// ---- agents ----

type agentsPage struct {
	Rows    []incidents.AgentStatus
	Refused []string // spans the intake refused in the last hour, one line per reason and agent
}

func (h *Handler) agentsPage(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := h.cfg.Incidents.Status(r.Context(), "")
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	p := &agentsPage{Rows: st}
	if h.cfg.Refusals != nil {
		if p.Refused, err = h.cfg.Refusals.RefusedSpans(r.Context()); err != nil {
			h.log.Warn("web: read refused spans", "err", err)
		}
	}
	h.render(w, r, http.StatusOK, "agents", s, p)
}

type agentPage struct {
	A        *ownership.Agent
	Team     *ownership.Team
	St       incidents.AgentStatus
	SLAs     []slaRow
	Drills   []drillWeek
	Passed   int
	Failed   int
	Recent   []*incidents.Incident
	HasDrill bool
}

type slaRow struct {
	Metric, Limit string
	Breaches      []slaBreach
}

type slaBreach struct {
	Incident int64
	Observed string
	At       time.Time
}

type drillWeek struct {
	Start         time.Time
	Passed, Total int
	Class, Title  string
}

func (p *agentPage) title() string { return p.A.Name }

func (h *Handler) agentPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	name := r.PathValue("name")
	sts, err := h.cfg.Incidents.Status(ctx, name)
	if err != nil {
		h.domainError(w, r, s, err)
		return
	}
	if len(sts) == 0 || sts[0].Agent == nil {
		h.domainError(w, r, s, incidents.Errorf(incidents.ENOTFOUND, "No agent named %q.", name))
		return
	}
	p := &agentPage{St: sts[0], A: sts[0].Agent}
	p.Team = h.cfg.Incidents.Registry().Teams[p.A.Team]
	if p.Recent, err = h.cfg.Incidents.FindIncidents(ctx, incidents.IncidentFilter{Agent: p.A.Name, Limit: 10}); err != nil {
		h.domainError(w, r, s, err)
		return
	}
	p.SLAs = h.slaRows(ctx, p.A, p.Recent)
	p.Drills, p.Passed, p.Failed, p.HasDrill = h.drillStrip(ctx, p.A)
	h.render(w, r, http.StatusOK, "agent", s, p)
}

// slaRows lists the agent's SLAs with the values the alerts of its five most
// recent incidents reported: its recent breaches.
func (h *Handler) slaRows(ctx context.Context, ag *ownership.Agent, recent []*incidents.Incident) []slaRow {
	rows := make([]slaRow, 0, len(ag.SLAs))
	idx := map[string]int{}
	for _, sla := range ag.SLAs {
		idx[sla.Label()] = len(rows) // two SLAs may watch one metric: the name tells them apart
		rows = append(rows, slaRow{Metric: sla.Metric})
	}
	for i, inc := range recent {
		if i >= 5 {
			break
		}
		pm, err := h.cfg.Postmortems.Postmortem(ctx, inc.ID)
		if err != nil {
			continue
		}
		for _, c := range pm.SLAs {
			name := c.Name
			if name == "" {
				name = c.Metric
			}
			j, ok := idx[name]
			if !ok {
				continue
			}
			rows[j].Limit = c.Limit
			if c.Observed != "" {
				rows[j].Breaches = append(rows[j].Breaches, slaBreach{Incident: inc.ID, Observed: c.Observed, At: inc.CreatedAt})
			}
		}
	}
	for i, sla := range ag.SLAs {
		if rows[i].Limit == "" {
			rows[i].Limit = sla.Limit()
		}
	}
	return rows
}

// drillStrip is the last 26 weeks, oldest first, one cell a week.
func (h *Handler) drillStrip(ctx context.Context, ag *ownership.Agent) ([]drillWeek, int, int, bool) {
	now := h.now().UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	from := monday.AddDate(0, 0, -7*(drillWeeks-1))
	weeks := make([]drillWeek, drillWeeks)
	for i := range weeks {
		weeks[i].Start = from.AddDate(0, 0, 7*i)
	}
	if h.cfg.Drills == nil {
		return weeks, 0, 0, false
	}
	drills, err := h.cfg.Drills.FindDrills(ctx, ag.Name, from)
	if err != nil {
		h.log.Warn("web view: read drills", "agent", ag.Name, "err", err)
	}
	passed, failed := 0, 0
	for _, d := range drills {
		i := int(d.At.UTC().Sub(from) / (7 * 24 * time.Hour))
		if i < 0 || i >= drillWeeks {
			continue
		}
		weeks[i].Total++
		if d.OK {
			weeks[i].Passed++
			passed++
		} else {
			failed++
		}
	}
	for i := range weeks {
		wk := &weeks[i]
		label := "week of " + wk.Start.Format("2 Jan 2006")
		switch {
		case wk.Total == 0:
			wk.Class, wk.Title = "none", label+": no drill"
		case wk.Passed == wk.Total:
			wk.Class, wk.Title = "pass", fmt.Sprintf("%s: %d drill(s) passed", label, wk.Total)
		default:
			wk.Class, wk.Title = "fail", fmt.Sprintf("%s: %d of %d drill(s) failed", label, wk.Total-wk.Passed, wk.Total)
		}
	}
	return weeks, passed, failed, true
}
