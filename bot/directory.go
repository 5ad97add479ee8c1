package bot

import (
	"context"
	"errors"
	"strings"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/ownership"
)

// Directory answers who is who in Slack: ownership.Directory for kill
// authority and invites, ownership.SlackChecker for `reins validate --online`.
// It does not cache; ownership caches with a TTL so a Slack outage does not
// take the kill switch with it.
//
// When Slack says a user, e-mail or group does not exist, the error is a
// *NotFoundError, which has a NotFound() bool method: ownership, which may not
// import bot, tells "unknown" from "Slack is down" by asserting
// interface{ NotFound() bool }. Rate limits come back as
// *outbox.RetryAfterError; other failures are wrapped with what was asked.
type Directory struct {
	api *slack.Client
}

var _ ownership.SlackChecker = (*Directory)(nil)

// NewDirectory returns a Directory using api.
func NewDirectory(api *slack.Client) *Directory { return &Directory{api: api} }

// NotFoundError says Slack answered that what was asked for does not exist.
type NotFoundError struct {
	What string // "user bob@example.com", "user group S0ONCALL"
	Err  error
}

func (e *NotFoundError) Error() string { return e.What + " not found in Slack: " + e.Err.Error() }

// Unwrap returns Slack's error.
func (e *NotFoundError) Unwrap() error { return e.Err }

// NotFound reports true, so callers need not import bot to recognise it.
func (e *NotFoundError) NotFound() bool { return true }

// IsNotFound reports whether err says Slack does not know what was asked for.
func IsNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}

var notFoundCodes = map[string]bool{
	"users_not_found": true, "user_not_found": true, "no_such_subteam": true, "subteam_not_found": true,
	"channel_not_found": true,
}

// lookupErr maps Slack's "does not exist" answers to *NotFoundError and the
// rest through classify.
func lookupErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if notFoundCodes[slackErrorCode(err)] {
		return &NotFoundError{What: what, Err: err}
	}
	return classify("look up "+what, err)
}

// UserByEmail returns the Slack user ID for an e-mail address.
func (d *Directory) UserByEmail(ctx context.Context, email string) (string, error) {
	u, err := d.api.GetUserByEmailContext(ctx, strings.TrimSpace(email))
	if err != nil {
		return "", lookupErr("user "+email, err)
	}
	return u.ID, nil
}

// EmailOfUser returns the e-mail address of a user ID, "" when hidden.
func (d *Directory) EmailOfUser(ctx context.Context, userID string) (string, error) {
	u, err := d.api.GetUserInfoContext(ctx, userID, slack.GetUserInfoOptionIncludeLocale(false))
	if err != nil {
		return "", lookupErr("user "+userID, err)
	}
	return u.Profile.Email, nil
}

// DisplayName returns the name people know a user by (users.info): the
// display name, else the full name, else the handle.
func (d *Directory) DisplayName(ctx context.Context, userID string) (string, error) {
	u, err := d.api.GetUserInfoContext(ctx, userID, slack.GetUserInfoOptionIncludeLocale(false))
	if err != nil {
		return "", lookupErr("user "+userID, err)
	}
	for _, n := range []string{u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name} {
		if strings.TrimSpace(n) != "" {
			return strings.TrimSpace(n), nil
		}
	}
	return "", nil
}

// UsergroupMembers returns the user IDs in a user group.
func (d *Directory) UsergroupMembers(ctx context.Context, groupID string) ([]string, error) {
	members, err := d.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, lookupErr("user group "+groupID, err)
	}
	return members, nil
}

// UserExists reports whether the user exists and is not deactivated.
func (d *Directory) UserExists(ctx context.Context, userID string) (bool, error) {
	u, err := d.api.GetUserInfoContext(ctx, userID, slack.GetUserInfoOptionIncludeLocale(false))
	if err != nil {
		err = lookupErr("user "+userID, err)
		if IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return !u.Deleted, nil
}

// UsergroupExists reports whether an enabled user group has this ID.
func (d *Directory) UsergroupExists(ctx context.Context, groupID string) (bool, error) {
	groups, err := d.api.GetUserGroupsContext(ctx)
	if err != nil {
		return false, lookupErr("user groups", err)
	}
	for _, g := range groups {
		if g.ID == groupID {
			return true, nil
		}
	}
	return false, nil
}

// ChannelExists reports whether a channel of that name (with or without "#")
// exists and is not archived. Private channels count only when reins is in them.
func (d *Directory) ChannelExists(ctx context.Context, name string) (bool, error) {
	name = strings.TrimPrefix(strings.TrimSpace(name), "#")
	params := &slack.GetConversationsParameters{Limit: 1000, ExcludeArchived: true,
		Types: []string{"public_channel", "private_channel"}}
	for {
		page, next, err := d.api.GetConversationsContext(ctx, params)
		if err != nil {
			return false, lookupErr("channel #"+name, err)
		}
		for _, ch := range page {
			if ch.Name == name {
				return true, nil
			}
		}
		if next == "" {
			return false, nil
		}
		params.Cursor = next
	}
}
