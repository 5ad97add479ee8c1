// Package traces turns an agent's session link template (`sessions.link` in
// reins.yaml, e.g. https://langfuse.example.com/project/p1/sessions/{session})
// into links to the traces of the sessions an incident names.
package traces

import (
	"net/url"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// Placeholder is the token a link template holds where the session ID goes.
const Placeholder = "{session}"

// Link returns template with every {session} replaced by the session ID,
// path-escaped: session IDs come from alerts and may hold "/", "?" or spaces
// that would otherwise change which page the link opens. An empty template
// gives "" (the agent has no trace tool configured).
func Link(template, session string) string {
	if template == "" {
		return ""
	}
	return strings.ReplaceAll(template, Placeholder, url.PathEscape(session))
}

// Links returns one link per session, Text being the session ID. With an empty
// template the links have no URL: the sessions are still worth listing.
func Links(template string, sessions []string) []incidents.Link {
	if len(sessions) == 0 {
		return nil
	}
	links := make([]incidents.Link, 0, len(sessions))
	for _, s := range sessions {
		links = append(links, incidents.Link{Text: s, URL: Link(template, s)})
	}
	return links
}
