package ownership_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// fakeDirectory is a Directory made of function fields; nil fields fail.
type fakeDirectory struct {
	userByEmail func(email string) (string, error)
	members     func(group string) ([]string, error)
	calls       atomic.Int32
}

func (f *fakeDirectory) UserByEmail(_ context.Context, email string) (string, error) {
	f.calls.Add(1)
	if f.userByEmail == nil {
		return "", errors.New("UserByEmail not expected")
	}
	return f.userByEmail(email)
}

func (f *fakeDirectory) EmailOfUser(context.Context, string) (string, error) {
	return "", errors.New("EmailOfUser not expected")
}

func (f *fakeDirectory) UsergroupMembers(_ context.Context, group string) ([]string, error) {
	f.calls.Add(1)
	if f.members == nil {
		return nil, errors.New("UsergroupMembers not expected")
	}
	return f.members(group)
}

// fakeOnCall is an OnCall whose answer can be switched off mid-test.
type fakeOnCall struct {
	mu     sync.Mutex
	emails map[string][]string
	err    error
	calls  int
}

func (f *fakeOnCall) OnCallEmails(_ context.Context, policy string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.emails[policy], nil
}

func (f *fakeOnCall) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

var people = map[string]string{
	"bob@example.com":  "U02BOB",
	"dave@example.com": "U04DAVE",
}

func slackDirectory() *fakeDirectory {
	return &fakeDirectory{
		userByEmail: func(email string) (string, error) {
			if id, ok := people[email]; ok {
				return id, nil
			}
			return "", errors.New("users_not_found")
		},
		members: func(group string) ([]string, error) {
			if group == "S0ONCALL" {
				return []string{"U03CAROL"}, nil
			}
			return nil, errors.New("no_such_subteam")
		},
	}
}

func pagerDuty() *fakeOnCall {
	return &fakeOnCall{emails: map[string][]string{"PABC123": {"dave@example.com"}}}
}

func supportBot() *ownership.Agent {
	return &ownership.Agent{
		Name: "support-bot",
		KillAuthority: ownership.Authority{
			Users:      []string{"U01ALICE", "bob@example.com"},
			Usergroups: []string{"S0ONCALL"},
			OnCall:     "PABC123",
		},
	}
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestAuthorize(t *testing.T) {
	pdDown := errors.New("pagerduty: 503 Service Unavailable")
	tests := []struct {
		name   string
		noDir  bool
		noPD   bool
		warm   bool // ask once while PagerDuty is up, then let the cache expire
		pdErr  error
		person string

		wantAllowed     bool
		wantReason      string // substring
		wantStale       bool
		wantUnavailable string // substring of the joined list, "" for none
		wantHolders     string // comma-joined, checked on refusal
	}{
		{name: "OKDirectUser", person: "U01ALICE", wantAllowed: true, wantReason: "listed in kill_authority.users"},
		{name: "OKEmailUser", person: "U02BOB", wantAllowed: true, wantReason: "listed in kill_authority.users as bob@example.com"},
		{name: "OKUsergroupMember", person: "U03CAROL", wantAllowed: true, wantReason: "member of user group S0ONCALL"},
		{name: "OKOnCall", person: "U04DAVE", wantAllowed: true, wantReason: "on call now for PABC123"},
		{name: "RefusedNobody", person: "U09EVE", wantReason: "not listed in kill_authority for support-bot; holders now: U01ALICE, U02BOB, U03CAROL, U04DAVE",
			wantHolders: "U01ALICE,U02BOB,U03CAROL,U04DAVE"},
		{name: "OKStaleWhenPagerDutyDown", warm: true, pdErr: pdDown, person: "U04DAVE", wantAllowed: true, wantReason: "on call now for PABC123", wantStale: true},
		{name: "RefusedPagerDutyDownNoCache", pdErr: pdDown, person: "U04DAVE",
			wantReason:      "the on-call source is unavailable (PagerDuty on-call for PABC123)",
			wantUnavailable: "PagerDuty on-call for PABC123", wantHolders: "U01ALICE,U02BOB,U03CAROL"},
		{name: "OKDirectUserNothingConfigured", noDir: true, noPD: true, person: "U01ALICE", wantAllowed: true, wantReason: "listed in kill_authority.users"},
		{name: "RefusedNothingConfigured", noDir: true, noPD: true, person: "U02BOB",
			wantReason:      "the directory, user-group and on-call sources are unavailable",
			wantUnavailable: "PagerDuty on-call for PABC123 (PagerDuty not configured)", wantHolders: "U01ALICE,bob@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)}
			var dir ownership.Directory
			if !tt.noDir {
				dir = slackDirectory()
			}
			pd := pagerDuty()
			var oncall ownership.OnCall
			if !tt.noPD {
				oncall = pd
			}
			auth := ownership.NewAuthorizer(dir, oncall, time.Minute, clk.Now, nil)
			if tt.warm {
				auth.Authorize(context.Background(), supportBot(), "U09EVE")
				clk.advance(2 * time.Minute)
			}
			pd.fail(tt.pdErr)

			got := auth.Authorize(context.Background(), supportBot(), tt.person)
			if got.Allowed != tt.wantAllowed || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("got allowed=%v reason %q, want allowed=%v reason containing %q", got.Allowed, got.Reason, tt.wantAllowed, tt.wantReason)
			}
			if got.Stale != tt.wantStale {
				t.Errorf("stale: got %v, want %v", got.Stale, tt.wantStale)
			}
			unavailable := strings.Join(got.Unavailable, "; ")
			if (tt.wantUnavailable == "") != (unavailable == "") || !strings.Contains(unavailable, tt.wantUnavailable) {
				t.Errorf("unavailable: got %q, want %q", unavailable, tt.wantUnavailable)
			}
			if !got.Allowed && strings.Join(got.Holders, ",") != tt.wantHolders {
				t.Errorf("holders: got %v, want %s", got.Holders, tt.wantHolders)
			}
			if got.Agent != "support-bot" || got.Person != tt.person {
				t.Errorf("got agent %q person %q", got.Agent, got.Person)
			}
			// The ack path's shortcut allows exactly whom Authorize allows
			// without a look-up.
			if listed, direct := ownership.ListedByID(supportBot(), tt.person), got.Allowed && got.Reason == "listed in kill_authority.users"; listed != direct {
				t.Errorf("ListedByID = %v, Authorize allowed by ID = %v", listed, direct)
			}
		})
	}
}

func TestAuthorizeDirectUserNeedsNoLookup(t *testing.T) {
	dir := slackDirectory()
	pd := pagerDuty()
	auth := ownership.NewAuthorizer(dir, pd, time.Minute, nil, nil)
	if d := auth.Authorize(context.Background(), supportBot(), "U01ALICE"); !d.Allowed {
		t.Fatalf("got refused: %s", d.Reason)
	}
	if dir.calls.Load() != 0 || pd.calls != 0 {
		t.Errorf("got %d directory and %d on-call look-ups, want none", dir.calls.Load(), pd.calls)
	}
}

func TestAuthorizeCachesWithinTTL(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)}
	dir := slackDirectory()
	pd := pagerDuty()
	auth := ownership.NewAuthorizer(dir, pd, time.Minute, clk.Now, nil)
	ctx := context.Background()
	auth.Authorize(ctx, supportBot(), "U09EVE")
	first := dir.calls.Load()
	clk.advance(30 * time.Second)
	auth.Authorize(ctx, supportBot(), "U09EVE")
	if got := dir.calls.Load(); got != first || pd.calls != 1 {
		t.Errorf("within the TTL: got %d directory calls (first pass %d) and %d on-call calls, want no new ones", got, first, pd.calls)
	}
	clk.advance(time.Minute)
	auth.Authorize(ctx, supportBot(), "U09EVE")
	if pd.calls != 2 {
		t.Errorf("after the TTL: got %d on-call calls, want 2", pd.calls)
	}
}

func TestAuthorizeNilAgent(t *testing.T) {
	d := ownership.NewAuthorizer(nil, nil, 0, nil, nil).Authorize(context.Background(), nil, "U01ALICE")
	if d.Allowed {
		t.Error("nil agent: got allowed, want refused")
	}
}

func TestHolders(t *testing.T) {
	auth := ownership.NewAuthorizer(slackDirectory(), pagerDuty(), time.Minute, nil, nil)
	holders, unavailable := auth.Holders(context.Background(), supportBot())
	if got, want := strings.Join(holders, ","), "U01ALICE,U02BOB,U03CAROL,U04DAVE"; got != want || len(unavailable) != 0 {
		t.Errorf("got %s %v, want %s and none unavailable", got, unavailable, want)
	}
}

func TestAuthorizeConcurrent(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)}
	auth := ownership.NewAuthorizer(slackDirectory(), pagerDuty(), time.Minute, clk.Now, nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			person := []string{"U01ALICE", "U02BOB", "U03CAROL", "U04DAVE"}[i%4]
			for range 50 {
				if d := auth.Authorize(context.Background(), supportBot(), person); !d.Allowed {
					t.Errorf("%s: got refused: %s", person, d.Reason)
					return
				}
				clk.advance(time.Second)
			}
		}()
	}
	wg.Wait()
}
