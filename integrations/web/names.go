package web

import (
	"context"
	"regexp"
	"sync"
	"time"
)

// NameSource says what a Slack user is called (users.info); bot.Directory
// implements it. nil: people appear as their IDs.
type NameSource interface {
	DisplayName(ctx context.Context, userID string) (string, error)
}

// Names are kept an hour; a failed lookup is not asked again for five
// minutes, so a page listing many people waits on Slack once, not per view.
const (
	nameTTL      = time.Hour
	nameRetry    = 5 * time.Minute
	nameTimeout  = 2 * time.Second
	maxNameCache = 10_000
)

type cachedName struct {
	name    string // "" when unknown: the ID is shown
	expires time.Time
}

// names caches NameSource answers with a TTL.
type names struct {
	src NameSource
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedName
}

// slackUserID finds Slack user IDs as reins writes them: U01ALICE,
// slack:U01ALICE, web:U01ALICE, <@U01ALICE>.
var slackUserID = regexp.MustCompile(`(?:<@|\b(?:slack|web):)?\b([UW][A-Z0-9]{6,})\b>?`)

// name is what to show for the Slack user id: the cached or looked-up name,
// else the ID.
func (n *names) name(ctx context.Context, id string) string {
	if n == nil || n.src == nil {
		return id
	}
	now := n.now()
	n.mu.Lock()
	c, ok := n.cache[id]
	n.mu.Unlock()
	if ok && now.Before(c.expires) {
		if c.name == "" {
			return id
		}
		return c.name
	}
	ctx, cancel := context.WithTimeout(ctx, nameTimeout)
	defer cancel()
	got, err := n.src.DisplayName(ctx, id)
	c = cachedName{name: got, expires: now.Add(nameTTL)}
	if err != nil {
		c = cachedName{expires: now.Add(nameRetry)}
	}
	n.mu.Lock()
	if len(n.cache) >= maxNameCache {
		clear(n.cache) // a bound, not an eviction policy: names are cheap to ask again
	}
	n.cache[id] = c
	n.mu.Unlock()
	if c.name == "" {
		return id
	}
	return c.name
}

// people replaces every Slack user ID in s (an actor, a holder, a line of
// the timeline) by the person's name.
func (n *names) people(ctx context.Context, s string) string {
	if n == nil || n.src == nil {
		return s
	}
	return slackUserID.ReplaceAllStringFunc(s, func(m string) string {
		return n.name(ctx, slackUserID.FindStringSubmatch(m)[1])
	})
}
