package ownership

import "context"

// Directory resolves Slack identities. Implemented by bot on the Slack Web API.
type Directory interface {
	// UserByEmail returns the Slack user ID for an e-mail address.
	UserByEmail(ctx context.Context, email string) (string, error)
	// EmailOfUser returns the e-mail address of a Slack user ID ("" if hidden).
	EmailOfUser(ctx context.Context, userID string) (string, error)
	// UsergroupMembers returns the user IDs in a Slack user group.
	UsergroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// OnCall answers who is on call now. Implemented by integrations/pagerduty.
type OnCall interface {
	// OnCallEmails returns the e-mail addresses of the people on call now for
	// an escalation policy.
	OnCallEmails(ctx context.Context, escalationPolicy string) ([]string, error)
}

// Decision is the answer to "may this person halt this agent", with its reasons.
type Decision struct {
	Allowed bool
	Agent   string
	Person  string // as asked: a Slack user ID
	// Reason says why, in words safe to show the person ("listed in kill_authority.users",
	// "member of S0ONCALL", "on call for PABC123", "not listed ...").
	Reason string
	// Holders are the people (Slack user IDs, or e-mails where unresolved) who hold
	// authority now, for the refusal message and /agent who.
	Holders []string
	// Stale is set when a source failed and the last known answer was used;
	// Unavailable names sources that failed with no cached answer.
	Stale       bool
	Unavailable []string
}

// SlackChecker is what `reins validate --online` asks of Slack.
type SlackChecker interface {
	Directory
	UserExists(ctx context.Context, userID string) (bool, error)
	UsergroupExists(ctx context.Context, groupID string) (bool, error)
	ChannelExists(ctx context.Context, name string) (bool, error)
}

// PagerChecker is what `reins validate --online` asks of PagerDuty.
type PagerChecker interface {
	OnCall
	EscalationPolicyExists(ctx context.Context, id string) (bool, error)
}
