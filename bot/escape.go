package bot

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Slack limits that slack-go does not enforce, counted in characters (runes).
const (
	MaxBlocks         = 50    // blocks per message
	MaxModalBlocks    = 100   // blocks per modal
	MaxSectionText    = 3000  // section and context text
	MaxFieldText      = 2000  // one section field
	MaxHeaderText     = 150   // header block
	MaxButtonText     = 75    // button label, option text
	MaxButtonValue    = 2000  // button value
	MaxModalTitle     = 24    // modal title, submit and close labels
	MaxConfirmTitle   = 100   // confirmation dialog title
	MaxConfirmText    = 300   // confirmation dialog text
	MaxOptionValue    = 150   // select option value
	MaxSelectOptions  = 100   // options of a static select
	MaxInputLabel     = 2000  // input block label
	MaxPlaceholder    = 150   // input placeholder
	MaxTopic          = 250   // channel topic
	MaxBookmarkTitle  = 64    // not documented by Slack; longer titles are cut in the UI
	MaxMessageText    = 40000 // chat.postMessage text
	maxChannelNameLen = 80
)

// ellipsis marks text cut to fit a limit.
const ellipsis = "…"

// wordJoiner is put after "@" so "@channel" reads the same but can never be
// turned into a broadcast mention, whatever link_names or parse settings say.
const wordJoiner = "\u2060"

// broadcast matches the words Slack may turn into @channel, @here, @everyone.
var broadcast = regexp.MustCompile(`(?i)([@!])(channel|here|everyone)\b`)

// The replacers are built once: a Replacer compiles itself on first use, and
// one made per call was about 5% of a burst's answers' CPU (issue 25).
var (
	entities  = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	linkMarks = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C")
)

// Escape makes untrusted text safe inside mrkdwn: control characters are
// dropped (newlines and tabs kept), &, < and > become entities, so "<!here>",
// "<@U1>" and "<http://evil|click>" show as typed, and @channel, @here and
// @everyone are broken with an invisible joiner so they cannot notify anyone.
// Formatting marks such as *bold* are left alone: they cannot reach anyone.
func Escape(s string) string {
	s = stripControl(s, true)
	s = entities.Replace(s)
	return neutralise(s)
}

// PlainText makes untrusted text safe for plain_text objects (headers,
// buttons, modal labels): one line, no control characters, no broadcasts.
// Slack shows plain_text as typed, so nothing is entity-escaped.
func PlainText(s string) string {
	s = strings.Join(strings.Fields(stripControl(s, true)), " ")
	return neutralise(s)
}

func neutralise(s string) string {
	return broadcast.ReplaceAllString(s, "${1}"+wordJoiner+"${2}")
}

// stripControl drops control and format characters (bidi overrides, zero
// widths), keeping newlines and tabs when keepSpace is set.
func stripControl(s string, keepSpace bool) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case keepSpace && (r == '\n' || r == '\t'):
			return r
		case r == '\r':
			return -1
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
}

// Truncate cuts s to at most max runes, ending with "…" when cut.
func Truncate(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:max-1]), unicode.IsSpace) + ellipsis
}

// TruncateEscaped cuts text already passed through Escape to max runes
// without splitting an entity such as "&amp;" or a "@⁠here" joiner pair.
func TruncateEscaped(s string, max int) string {
	if max <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	cut := string([]rune(s)[:max-1])
	// An entity cut in half would show as "&am"; a link or mention of ours
	// cut in half would leave Slack an unclosed "<".
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	return strings.TrimRightFunc(cut, unicode.IsSpace) + ellipsis
}

// EscapeLimit escapes s for mrkdwn and cuts it to max runes.
func EscapeLimit(s string, max int) string { return TruncateEscaped(Escape(s), max) }

// PlainLimit cleans s for plain_text and cuts it to max runes.
func PlainLimit(s string, max int) string { return Truncate(PlainText(s), max) }

// SafeURL returns u when it is an absolute http(s) URL, escaped for use in a
// mrkdwn link (<url|text>), else "". Alert links are untrusted: a javascript:
// or slack:// URL, or one smuggling "|" or ">", must not become a live link.
func SafeURL(u string) string {
	u = strings.TrimSpace(u)
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return ""
	}
	if len(u) > 3000 || strings.ContainsFunc(u, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return ""
	}
	return linkMarks.Replace(u)
}

// Link renders a mrkdwn link to an untrusted URL with untrusted text; when the
// URL is unsafe only the text is shown. Empty text shows the URL.
func Link(u, text string) string {
	safe := SafeURL(u)
	if text == "" {
		if safe == "" {
			return Escape(u)
		}
		return "<" + safe + ">"
	}
	label := strings.ReplaceAll(EscapeLimit(PlainText(text), 200), "|", "¦")
	if safe == "" {
		return label
	}
	return "<" + safe + "|" + label + ">"
}

var (
	userID  = regexp.MustCompile(`^[UW][A-Z0-9]+$`)
	groupID = regexp.MustCompile(`^S[A-Z0-9]+$`)
)

// Mention renders a person from config: a user ID as <@U…>, a user-group ID
// as <!subteam^S…>, anything else (an e-mail, a name) as escaped text.
func Mention(person string) string {
	switch {
	case userID.MatchString(person):
		return "<@" + person + ">"
	case groupID.MatchString(person):
		return "<!subteam^" + person + ">"
	}
	return Escape(person)
}

// ChannelName lower-cases name and keeps only what Slack allows in channel
// names (a-z, 0-9, -, _), joining the rest with single dashes, at most 80 runes.
func ChannelName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > maxChannelNameLen {
		out = strings.TrimRight(out[:maxChannelNameLen], "-")
	}
	return out
}
