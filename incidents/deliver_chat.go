package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

const (
	maxChannelName = 80
	maxPrefix      = 20 // leaves room for the number, which must survive the cut
	maxTopic       = 250
	maxBookmarks   = 3 // session bookmarks; the runbook comes first
)

// chatHandlers registers the outbox kinds that build and post to the
// incident channel.
func (s *chatSteps) chatHandlers(handle func(kind string, h outbox.Handler)) {
	handle(KindCreateChannel, s.deliverCreateChannel)
	handle(KindPostSummary, s.deliverSummary)
	handle(KindUpdateSummary, s.deliverSummaryUpdate)
	handle(KindSetTopic, s.deliverTopic)
	handle(KindInvite, s.deliverInvite)
	handle(KindBookmark, s.deliverBookmarks)
	handle(KindAnnounce, s.deliverAnnounce)
	handle(KindPost, s.deliverPost)
}

var errNoChat = outbox.Permanent(errors.New("Slack is not configured (SLACK_BOT_TOKEN unset)"))

const KindCreateChannel = "create_channel" // create #inc-42-agent-slug, remember its ID

func (s *chatSteps) deliverCreateChannel(ctx context.Context, it *outbox.Item) error {
	if s.chat == nil {
		return errNoChat
	}
	inc, err := s.store.FindIncident(ctx, it.IncidentID)
	if err != nil {
		return fmt.Errorf("load incident %d: %w", it.IncidentID, err)
	}
	if inc.SlackChannelID != "" {
		return nil // done before a crash or by another worker
	}
	name := ChannelName(s.Registry().Slack.ChannelPrefix, inc.ID, inc.Agent, inc.Title)
	id, used, err := s.chat.CreateChannel(ctx, name, false)
	if err != nil {
		return fmt.Errorf("create channel %s for incident %d: %w", name, inc.ID, err)
	}
	s.log.Info("channel created", "incident", inc.ID, "channel", used)
	return s.UpdateIncident(ctx, inc.ID, func(q Queries, inc *Incident) (bool, error) {
		if inc.SlackChannelID != "" {
			return false, nil
		}
		inc.SlackChannelID, inc.SlackChannelName = id, used
		return true, AppendEvent(ctx, q, inc.ID, s.clock.Now(), EventChannelCreated, System,
			"Channel #"+used+" created", map[string]any{"channel_id": id, "name": used})
	})
}

// ChannelName is `<prefix>-<id>-<agent>-<slug of title>`: lowercase letters,
// digits, '-' and '_', at most 80 characters, as Slack requires.
func ChannelName(prefix string, id int64, agent, title string) string {
	prefix = Slug(prefix)
	if prefix = strings.Trim(prefix[:min(len(prefix), maxPrefix)], "-_"); prefix == "" {
		prefix = "inc"
	}
	name := fmt.Sprintf("%s-%d", prefix, id)
	for _, part := range []string{agent, title} {
		if p := Slug(part); p != "" {
			name += "-" + p
		}
	}
	if len(name) > maxChannelName {
		name = strings.TrimRight(name[:maxChannelName], "-_")
	}
	return name
}

const KindPostSummary = "post_summary" // post and pin the summary, remember its ts

func (s *chatSteps) deliverSummary(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	v, err := s.summaryView(ctx, inc)
	if err != nil {
		return err
	}
	ts, err := s.chat.PostSummary(ctx, inc.SlackChannelID, inc.SummaryTS, v)
	if err != nil {
		return fmt.Errorf("post summary of incident %d: %w", inc.ID, err)
	}
	if ts == inc.SummaryTS {
		return nil
	}
	return s.UpdateIncident(ctx, inc.ID, func(q Queries, inc *Incident) (bool, error) {
		inc.SummaryTS = ts
		return true, nil
	})
}

const KindUpdateSummary = "update_summary" // update the summary in place (debounced)

// deliverSummaryUpdate refreshes a posted summary. Before the summary is
// posted there is nothing to refresh: post_summary reads the incident when it
// runs, so it shows the same state.
func (s *chatSteps) deliverSummaryUpdate(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok || inc.SummaryTS == "" {
		return err
	}
	return s.deliverSummary(ctx, it)
}

// summaryView gathers what the summary shows, as of now.
func (s *chatSteps) summaryView(ctx context.Context, inc *Incident) (*SummaryView, error) {
	reg := s.Registry()
	v := &SummaryView{Incident: inc, PublicURL: s.cfg.PublicURL}
	if !inc.Unowned {
		v.Agent = FindAgent(reg, inc.Agent)
	}
	if v.Agent != nil {
		v.Team = reg.Teams[v.Agent.Team]
		if s.auth != nil {
			v.KillHolders, _ = s.auth.Holders(ctx, v.Agent)
		}
	}
	alerts, err := s.store.FindAlerts(ctx, inc.ID)
	if err != nil {
		return nil, fmt.Errorf("load alerts of incident %d: %w", inc.ID, err)
	}
	v.Collects, _ = Collector(inc.Agent)
	if v.Collects != "" {
		v.SeenAgents = seenAgents(alerts)
	}
	for _, a := range alerts {
		if a.Status == AlertFiring {
			v.Firing++
		} else {
			v.Resolved++
		}
		if v.Latest == nil || !a.ReceivedAt.Before(v.Latest.ReceivedAt) {
			v.Latest = a
		}
	}
	v.Sessions = SessionLinks(v.Agent, inc.Sessions)
	if recs := s.SessionRecordsOf(ctx, inc, true); len(recs) > 0 {
		v.Totals = sessionTotals(recs)
		v.Outside = OutsideBlast(recs, v.Agent)
	}
	if v.Halts, err = s.store.FindHalts(ctx, inc.Agent, inc.ID); err != nil {
		return nil, fmt.Errorf("load halts of incident %d: %w", inc.ID, err)
	}
	c, err := s.store.FindChecklist(ctx, inc.ID)
	switch {
	case err == nil:
		v.Answered, v.Total = c.Answered(), len(c.Items)
	case ErrorCode(err) != ENOTFOUND:
		return nil, fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
	}
	return v, nil
}

// SessionLinks pairs each session with its trace link from the agent's
// sessions.link template; without a template the link has no URL.
func SessionLinks(ag *ownership.Agent, sessions []string) []Link {
	out := make([]Link, 0, len(sessions))
	for _, id := range sessions {
		l := Link{Text: id}
		if ag != nil {
			l.URL = ownership.SessionLink(ag.Sessions.Link, id)
		}
		out = append(out, l)
	}
	return out
}

const KindSetTopic = "set_topic" // channel topic: agent, severity, title

func (s *chatSteps) deliverTopic(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	topic := Clip(fmt.Sprintf("%s · %s · %s", inc.Agent, inc.Severity, inc.Title), maxTopic)
	if err := s.chat.SetTopic(ctx, inc.SlackChannelID, topic); err != nil {
		return fmt.Errorf("set topic of incident %d: %w", inc.ID, err)
	}
	return nil
}

const KindInvite = "invite" // owners and kill authority into the channel

func (s *chatSteps) deliverInvite(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok || inc.Unowned {
		return err
	}
	ag := FindAgent(s.Registry(), inc.Agent)
	if ag == nil {
		return nil // removed from the registry since
	}
	people := slices.Concat(ag.RACI.Responsible, ag.RACI.Accountable, ag.KillAuthority.Users, ag.KillAuthority.Usergroups)
	if s.auth != nil {
		holders, _ := s.auth.Holders(ctx, ag) // whoever is on call now, too
		people = append(people, holders...)
	}
	people = Dedupe(people)
	if len(people) == 0 {
		return nil
	}
	if err := s.chat.Invite(ctx, inc.SlackChannelID, people); err != nil {
		return fmt.Errorf("invite owners to incident %d: %w", inc.ID, err)
	}
	return nil
}

const KindBookmark = "bookmark" // runbook and first session links

func (s *chatSteps) deliverBookmarks(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	ag := FindAgent(s.Registry(), inc.Agent)
	var links []Link
	if ag != nil && ag.Runbook != "" && !inc.Unowned {
		links = append(links, Link{Text: "Runbook", URL: ag.Runbook})
	}
	if inc.Unowned {
		ag = nil
	}
	for _, l := range SessionLinks(ag, inc.Sessions) {
		if l.URL != "" && len(links) < maxBookmarks+1 {
			links = append(links, Link{Text: "Session " + l.Text, URL: l.URL})
		}
	}
	for _, l := range links {
		if err := s.chat.Bookmark(ctx, inc.SlackChannelID, l); err != nil {
			return fmt.Errorf("bookmark %s in incident %d: %w", l.Text, inc.ID, err)
		}
	}
	return nil
}

const KindAnnounce = "announce" // one line in the team's (or governance) channel

func (s *chatSteps) deliverAnnounce(ctx context.Context, it *outbox.Item) error {
	if s.chat == nil {
		return errNoChat
	}
	inc, err := s.store.FindIncident(ctx, it.IncidentID)
	if err != nil {
		return fmt.Errorf("load incident %d: %w", it.IncidentID, err)
	}
	reg := s.Registry()
	channel := reg.Slack.GovernanceChannel
	if ag := FindAgent(reg, inc.Agent); ag != nil && !inc.Unowned {
		if t := reg.Teams[ag.Team]; t != nil && t.SlackChannel != "" {
			channel = t.SlackChannel
		}
	}
	if channel == "" {
		return nil
	}
	m := Message{Channel: channel, Style: StyleWarning,
		Title:  fmt.Sprintf("Incident #%d opened for %s", inc.ID, inc.Agent),
		Text:   inc.Title,
		Fields: []Field{{Label: "Severity", Value: inc.Severity}, {Label: "Source", Value: inc.Source}},
		Links:  []Link{s.IncidentLink(inc.ID)},
	}
	switch kind, _ := Collector(inc.Agent); {
	case kind != "":
		alerts, err := s.store.FindAlerts(ctx, inc.ID)
		if err != nil {
			return fmt.Errorf("load alerts of incident %d: %w", inc.ID, err)
		}
		m.Fields = append(m.Fields, Field{Label: "Agents seen", Value: seenAgentsText(seenAgents(alerts))})
		if kind == "unrouted" {
			m.Fields = append(m.Fields, Field{Label: "Owner",
				Value: "none: add this agent to reins.yaml (or as an alias of an agent) so its alerts reach its owners"})
		} else {
			m.Fields = append(m.Fields, Field{Label: "Why", Value: "more new incidents a minute than alerts.max_new_incidents_per_minute: these alerts joined one incident"})
		}
	case inc.Unowned:
		m.Fields = append(m.Fields, Field{Label: "Owner", Value: "none: the agent is not in reins.yaml"})
	}
	if inc.SlackChannelID != "" {
		m.Links = append([]Link{ChannelLink(inc)}, m.Links...)
	}
	if _, err := s.chat.Post(ctx, m); err != nil {
		return fmt.Errorf("announce incident %d in %s: %w", inc.ID, channel, err)
	}
	return nil
}

// ThreadOfSummary, as a Message's ThreadTS in a KindPost payload, means the
// thread under the incident's summary message (its ts is known only once the
// summary is posted).
const ThreadOfSummary = "@summary"

const KindPost = "post" // payload: a Message; Channel "" is the incident channel

func (s *chatSteps) deliverPost(ctx context.Context, it *outbox.Item) error {
	if s.chat == nil {
		return errNoChat
	}
	m, err := decodeMessage(it.Payload)
	if err != nil {
		return outbox.Permanent(fmt.Errorf("decode message %s: %w", it.Key, err))
	}
	if m.Channel == "" || m.ThreadTS == ThreadOfSummary {
		if it.IncidentID == 0 {
			return outbox.Permanent(fmt.Errorf("message %s names no channel", it.Key))
		}
		inc, err := s.store.FindIncident(ctx, it.IncidentID)
		if err != nil {
			return fmt.Errorf("load incident %d: %w", it.IncidentID, err)
		}
		if inc.SlackChannelID == "" {
			return &outbox.RetryAfterError{After: waitForChannel, Err: fmt.Errorf("incident %d has no channel yet", inc.ID)}
		}
		if m.Channel == "" {
			m.Channel = inc.SlackChannelID
		}
		if m.ThreadTS == ThreadOfSummary {
			m.ThreadTS = inc.SummaryTS
		}
	}
	if _, err := s.chat.Post(ctx, m); err != nil {
		return fmt.Errorf("post %s: %w", it.Key, err)
	}
	return nil
}

func decodeMessage(raw json.RawMessage) (Message, error) {
	var m Message
	err := json.Unmarshal(raw, &m)
	return m, err
}

// maxSeenAgents bounds the agent names a collecting incident lists.
const maxSeenAgents = 20

// seenAgents returns the distinct agent label values of alerts, sorted,
// at most maxSeenAgents; "" (no agent label at all) is shown as such.
func seenAgents(alerts []*Alert) []string {
	set := map[string]bool{}
	for _, a := range alerts {
		name := a.Agent
		if strings.TrimSpace(name) == "" {
			name = "(no agent label)"
		}
		set[name] = true
	}
	out := slices.Sorted(maps.Keys(set))
	if len(out) > maxSeenAgents {
		out = append(out[:maxSeenAgents], fmt.Sprintf("… and %d more", len(set)-maxSeenAgents))
	}
	return out
}

func seenAgentsText(names []string) string {
	if len(names) == 0 {
		return "none yet"
	}
	return Clip(strings.Join(names, ", "), 1000)
}
