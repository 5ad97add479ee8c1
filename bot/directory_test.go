package bot

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
)

func newDirectory(t *testing.T) (*Directory, *slackfake.Server) {
	t.Helper()
	srv := slackfake.New()
	t.Cleanup(srv.Close)
	srv.AddUser("U01ALICE", "alice@example.com")
	srv.AddUsergroup("S0ONCALL", "U01ALICE", "U02BOB")
	srv.AddChannel("C0SUP0001", "support-ai")
	return NewDirectory(srv.Client()), srv
}

// outcome names a Directory result: a value, not found, or another error.
func outcome(v any, err error) string {
	switch {
	case IsNotFound(err):
		return "not found"
	case err != nil:
		return "error: " + errKind(err)
	}
	return fmt.Sprint(v)
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		call    func(d *Directory) (any, error)
		prepare func(*slackfake.Server)
		want    string
	}{
		"UserByEmailOK":         {call: func(d *Directory) (any, error) { return d.UserByEmail(ctx, "alice@example.com") }, want: "U01ALICE"},
		"UserByEmailNotFound":   {call: func(d *Directory) (any, error) { return d.UserByEmail(ctx, "x@example.com") }, want: "not found"},
		"UserByEmailRateLimit":  {call: func(d *Directory) (any, error) { return d.UserByEmail(ctx, "alice@example.com") }, prepare: func(s *slackfake.Server) { s.RateLimit("users.lookupByEmail", 1, 4) }, want: "error: retry-after 4s"},
		"UserByEmailBadToken":   {call: func(d *Directory) (any, error) { return d.UserByEmail(ctx, "alice@example.com") }, prepare: func(s *slackfake.Server) { s.Fail("users.lookupByEmail", "invalid_auth", 1) }, want: "error: permanent"},
		"EmailOfUserOK":         {call: func(d *Directory) (any, error) { return d.EmailOfUser(ctx, "U01ALICE") }, want: "alice@example.com"},
		"EmailOfUserNotFound":   {call: func(d *Directory) (any, error) { return d.EmailOfUser(ctx, "U404") }, want: "not found"},
		"UsergroupMembersOK":    {call: func(d *Directory) (any, error) { return d.UsergroupMembers(ctx, "S0ONCALL") }, want: "[U01ALICE U02BOB]"},
		"UsergroupNotFound":     {call: func(d *Directory) (any, error) { return d.UsergroupMembers(ctx, "S404") }, want: "not found"},
		"UsergroupOutage":       {call: func(d *Directory) (any, error) { return d.UsergroupMembers(ctx, "S0ONCALL") }, prepare: func(s *slackfake.Server) { s.Fail("usergroups.users.list", "fatal_error", 1) }, want: "error: retry"},
		"UserExists":            {call: func(d *Directory) (any, error) { return d.UserExists(ctx, "U01ALICE") }, want: "true"},
		"UserMissing":           {call: func(d *Directory) (any, error) { return d.UserExists(ctx, "U404") }, want: "false"},
		"UsergroupExists":       {call: func(d *Directory) (any, error) { return d.UsergroupExists(ctx, "S0ONCALL") }, want: "true"},
		"UsergroupMissing":      {call: func(d *Directory) (any, error) { return d.UsergroupExists(ctx, "S404") }, want: "false"},
		"ChannelExists":         {call: func(d *Directory) (any, error) { return d.ChannelExists(ctx, "#support-ai") }, want: "true"},
		"ChannelMissing":        {call: func(d *Directory) (any, error) { return d.ChannelExists(ctx, "nowhere") }, want: "false"},
		"ChannelArchived":       {call: func(d *Directory) (any, error) { return d.ChannelExists(ctx, "support-ai") }, prepare: func(s *slackfake.Server) { s.ArchiveChannel("C0SUP0001") }, want: "false"},
		"ChannelListRateLimit":  {call: func(d *Directory) (any, error) { return d.ChannelExists(ctx, "support-ai") }, prepare: func(s *slackfake.Server) { s.RateLimit("conversations.list", 1, 20) }, want: "error: retry-after 20s"},
		"UserExistsOutage":      {call: func(d *Directory) (any, error) { return d.UserExists(ctx, "U01ALICE") }, prepare: func(s *slackfake.Server) { s.Fail("users.info", "internal_error", 1) }, want: "error: retry"},
		"UsergroupExistsOutage": {call: func(d *Directory) (any, error) { return d.UsergroupExists(ctx, "S0ONCALL") }, prepare: func(s *slackfake.Server) { s.Fail("usergroups.list", "internal_error", 1) }, want: "error: retry"},
	} {
		t.Run(name, func(t *testing.T) {
			d, srv := newDirectory(t)
			if tc.prepare != nil {
				tc.prepare(srv)
			}
			if got := outcome(tc.call(d)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDirectoryChannelExistsPages(t *testing.T) {
	d, srv := newDirectory(t)
	for i := range 1500 {
		srv.AddChannel(fmt.Sprintf("C1%07d", i), fmt.Sprintf("chan-%d", i))
	}
	ok, err := d.ChannelExists(context.Background(), "chan-1499")
	if err != nil || !ok {
		t.Fatalf("ChannelExists = %v, %v; want true", ok, err)
	}
	if n := len(srv.Calls("conversations.list")); n != 2 {
		t.Errorf("conversations.list calls = %d, want 2 pages", n)
	}
}

func TestNotFoundError(t *testing.T) {
	slackErr := slack.SlackErrorResponse{Err: "users_not_found"}
	err := fmt.Errorf("check authority: %w", lookupErr("user x@example.com", slackErr))
	var nf interface{ NotFound() bool }
	if !errors.As(err, &nf) || !nf.NotFound() {
		t.Fatalf("%v does not answer NotFound()", err)
	}
	if !errors.As(err, new(slack.SlackErrorResponse)) {
		t.Errorf("%v does not unwrap to Slack's error", err)
	}
	if IsNotFound(lookupErr("user x", slack.SlackErrorResponse{Err: "fatal_error"})) {
		t.Error("an outage counts as not found")
	}
	if IsNotFound(nil) {
		t.Error("nil counts as not found")
	}
}
