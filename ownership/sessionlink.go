package ownership

import (
	"net/url"
	"strings"
)

// SessionPlaceholder is the token a link template (an agent's sessions.link,
// a blast-radius link; docs/config.md) holds where the session ID goes.
const SessionPlaceholder = "{session}"

// SessionLink returns template with every {session} replaced by the session
// ID, escaped for where it stands: session IDs come from alerts and may hold
// "/", "?", "&" or spaces that would otherwise change which page the link
// opens, so a placeholder in the path is path-escaped and one after the "?"
// is query-escaped. An empty template gives "" (the agent has no trace tool
// configured); a template without the placeholder is returned as is.
//
// This is the one place reins fills a link template: the chat summary, the
// page, the postmortem, the checklist and the web view all call it.
func SessionLink(template, session string) string {
	if template == "" || !strings.Contains(template, SessionPlaceholder) {
		return template
	}
	query := strings.Index(template, "?")
	var b strings.Builder
	rest, at := template, 0
	for {
		i := strings.Index(rest, SessionPlaceholder)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		if query >= 0 && at+i > query {
			b.WriteString(url.QueryEscape(session))
		} else {
			b.WriteString(url.PathEscape(session))
		}
		rest = rest[i+len(SessionPlaceholder):]
		at += i + len(SessionPlaceholder)
	}
}

// HasSessionPlaceholder reports whether a link template needs a session.
func HasSessionPlaceholder(template string) bool {
	return strings.Contains(template, SessionPlaceholder)
}
