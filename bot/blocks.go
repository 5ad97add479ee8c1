package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
)

// Rendering caps: enough to act on at 2am, small enough to stay readable and
// inside Slack's limits.
const (
	maxSummarySessions = 20
	maxSummaryHolders  = 30
	maxSummaryLinks    = 10
	maxSummaryHalts    = 5
	maxAlertSummary    = 1500
)

// mrkdwn returns a mrkdwn text object. Verbatim stops Slack from turning bare
// URLs and names into links or mentions, on top of Escape.
func mrkdwn(text string) *slack.TextBlockObject {
	return &slack.TextBlockObject{Type: slack.MarkdownType, Text: text, Verbatim: true}
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, true, false)
}

// section is a mrkdwn section of already safe text, cut to Slack's limit.
func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(TruncateEscaped(text, MaxSectionText)), nil, nil)
}

func header(text string) *slack.HeaderBlock {
	return slack.NewHeaderBlock(plain(PlainLimit(text, MaxHeaderText)))
}

// contextBlock is a context of already safe mrkdwn texts (at most 10).
func contextBlock(texts ...string) *slack.ContextBlock {
	var elems []slack.MixedElement
	for _, t := range texts {
		if t != "" && len(elems) < 10 {
			elems = append(elems, mrkdwn(TruncateEscaped(t, MaxSectionText)))
		}
	}
	return slack.NewContextBlock("", elems...)
}

func button(actionID, value, label string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, plain(PlainLimit(label, MaxButtonText)))
}

// linkButton opens url; "" when the URL is not safe to offer.
func linkButton(actionID, url, label string) *slack.ButtonBlockElement {
	if SafeURL(url) == "" {
		return nil
	}
	b := button(actionID, "", label)
	b.URL = strings.TrimSpace(url)
	return b
}

// clock renders a time as people in the channel read it: UTC, to the minute.
func clock(t time.Time) string { return t.UTC().Format("15:04 UTC") }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// actorText renders who did something: a Slack user as a mention, anyone
// else by name and kind.
func actorText(a incidents.Actor) string {
	if a.Kind == incidents.ActorSlack && userID.MatchString(a.ID) {
		return "<@" + a.ID + ">"
	}
	name := a.Name
	if name == "" {
		name = a.ID
	}
	if a.Kind == "" || a.Kind == incidents.ActorSystem {
		return Escape(name)
	}
	return Escape(name) + " (" + Escape(a.Kind) + ")"
}

func quote(escaped string) string {
	return "> " + strings.ReplaceAll(escaped, "\n", "\n> ")
}

// more appends "+N more" when a list was capped.
func more(lines []string, total int) []string {
	if total > len(lines) {
		lines = append(lines, fmt.Sprintf("+%d more", total-len(lines)))
	}
	return lines
}

var styleEmoji = map[string]string{
	incidents.StyleInfo:    ":information_source:",
	incidents.StyleSuccess: ":white_check_mark:",
	incidents.StyleWarning: ":warning:",
	incidents.StyleDanger:  ":rotating_light:",
}

// RenderMessage renders a plain notice. Title, text, fields and link texts
// are untrusted and escaped; only m.Mention notifies anyone.
func RenderMessage(m incidents.Message) ([]slack.Block, string) {
	var head []string
	if m.Title != "" {
		head = append(head, strings.TrimSpace(styleEmoji[m.Style]+" *"+EscapeLimit(PlainText(m.Title), 300)+"*"))
	}
	if m.Text != "" {
		head = append(head, Escape(m.Text))
	}
	var mentions []string
	for _, p := range m.Mention {
		mentions = append(mentions, Mention(p))
	}
	var blocks []slack.Block
	body := strings.Join(head, "\n")
	if len(mentions) > 0 {
		cc := "cc " + strings.Join(mentions, " ")
		body = TruncateEscaped(body, MaxSectionText-len([]rune(cc))-1) + "\n" + cc
	}
	if body != "" {
		blocks = append(blocks, section(body))
	}
	blocks = append(blocks, fieldSections(m.Fields)...)
	var links []slack.BlockElement
	for i, l := range m.Links {
		if b := linkButton(fmt.Sprintf("link_%d", i), l.URL, orDefault(l.Text, "Open")); b != nil && len(links) < 25 {
			links = append(links, b)
		}
	}
	if len(links) > 0 {
		blocks = append(blocks, slack.NewActionBlock("links", links...))
	}
	if m.Reminder != 0 {
		blocks = append(blocks, reminderActions(m.Reminder))
	}
	if a := m.Approve; a != nil {
		value := strconv.FormatInt(a.IncidentID, 10) + "|" + a.Agent
		if len(a.Sessions) > 0 {
			value += " " + strings.Join(a.Sessions, ",")
		}
		if len(value) <= 2000 {
			blocks = append(blocks, slack.NewActionBlock("resume_gate",
				button(ActionApproveResume, value, "Approve resume").WithStyle(slack.StylePrimary)))
		}
	}
	if len(blocks) == 0 {
		blocks = append(blocks, section("(empty message)"))
	}
	fallback := strings.TrimSpace(EscapeLimit(PlainText(m.Title+": "+m.Text), 300))
	if m.Title == "" {
		fallback = EscapeLimit(PlainText(m.Text), 300)
	}
	if len(mentions) > 0 {
		fallback += " " + strings.Join(mentions, " ")
	}
	return capBlocks(blocks), fallback
}

// fieldSections renders label: value pairs, ten fields per section.
func fieldSections(fields []incidents.Field) []slack.Block {
	var out []slack.Block
	var cur []*slack.TextBlockObject
	for _, f := range fields {
		text := "*" + EscapeLimit(PlainText(f.Label), 200) + "*\n" + Escape(f.Value)
		cur = append(cur, mrkdwn(TruncateEscaped(text, MaxFieldText)))
		if len(cur) == 10 {
			out = append(out, slack.NewSectionBlock(nil, cur, nil))
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, slack.NewSectionBlock(nil, cur, nil))
	}
	return out
}

// capBlocks keeps a message within 50 blocks, saying what was left out.
func capBlocks(blocks []slack.Block) []slack.Block {
	if len(blocks) <= MaxBlocks {
		return blocks
	}
	cut := append(blocks[:MaxBlocks-1:MaxBlocks-1], contextBlock(fmt.Sprintf("+%d more blocks not shown", len(blocks)-MaxBlocks+1)))
	return cut
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
