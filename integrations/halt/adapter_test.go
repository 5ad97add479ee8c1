package halt_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

var (
	alice = incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE", Name: "alice"}
	epoch = time.Date(2026, 11, 28, 2, 14, 0, 0, time.UTC)
)

// env is a fake environment for Config.Getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func request(agent *ownership.Agent, action string, sessions ...string) incidents.HaltRequest {
	return incidents.HaltRequest{Agent: agent, Action: action, Sessions: sessions, IncidentID: 42,
		HaltID: 7, Reason: "looping on refunds", Actor: alice}
}

// fake is what the conformance run needs of a halttest server.
type fake interface {
	SetFault(halttest.Fault)
	Calls() []halttest.Call
	Reset()
}

// conformance is one remote adapter wired to its fake.
type conformance struct {
	agent   *ownership.Agent
	fake    fake
	halted  func() bool // the fake's state
	secret  string      // env var holding the credential
	adapter func(cfg halt.Config) halt.Adapter
	client  *http.Client // nil: a client with a 5 s timeout

	credential string // the value the fake accepts
}

func (c conformance) build(e env) halt.Adapter {
	client := c.client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	return c.adapter(halt.Config{Getenv: e.get, HTTPClient: client, Now: time.Now})
}

// runConformance runs what every remote adapter must do: halt, verify,
// repeat, resume, drill; and surface each failure of the far side as an
// error or a false verification, never as success.
func runConformance(t *testing.T, c conformance, credential string) {
	t.Helper()
	c.credential = credential
	t.Run("OK", c.ok)
	t.Run("ErrServer", c.errServer)
	t.Run("ErrTimeout", c.errTimeout)
	t.Run("VerifyFalseWhenStateWrong", c.verifyFalseWhenStateWrong)
	t.Run("ErrMissingCredential", c.errMissingCredential)
	t.Run("ErrWrongCredential", c.errWrongCredential)
	if !c.build(c.good()).SessionScoped() {
		t.Run("ErrSessionScoped", c.errSessionScoped)
	}
}

func (c conformance) good() env { return env{c.secret: c.credential} }

func (c conformance) ok(t *testing.T) {
	ctx := context.Background()
	a := c.build(c.good())
	if err := a.Drill(ctx, c.agent); err != nil {
		t.Fatalf("Drill: %v", err)
	}
	if c.halted() {
		t.Fatal("drill halted the agent")
	}
	for i := range 2 { // repeating a halt is safe
		if err := a.Do(ctx, request(c.agent, incidents.ActionHalt)); err != nil {
			t.Fatalf("halt %d: %v", i, err)
		}
	}
	if !c.halted() {
		t.Fatal("fake not halted after Do")
	}
	assertVerify(t, a, request(c.agent, incidents.ActionHalt), true)
	assertVerify(t, a, request(c.agent, incidents.ActionResume), false)
	if err := a.Do(ctx, request(c.agent, incidents.ActionResume)); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if c.halted() {
		t.Fatal("fake still halted after resume")
	}
	assertVerify(t, a, request(c.agent, incidents.ActionResume), true)
	assertVerify(t, a, request(c.agent, incidents.ActionHalt), false)
}

func (c conformance) errServer(t *testing.T) {
	ctx := context.Background()
	c.fake.SetFault(halttest.FaultError)
	defer c.fake.SetFault(halttest.FaultNone)
	a := c.build(c.good())
	err := a.Do(ctx, request(c.agent, incidents.ActionHalt))
	assertErr(t, err, incidents.EUNAVAILABLE, "500")
	_, err = a.Verify(ctx, request(c.agent, incidents.ActionHalt))
	assertErr(t, err, incidents.EUNAVAILABLE, "500")
	assertErr(t, a.Drill(ctx, c.agent), incidents.EUNAVAILABLE, "500")
}

func (c conformance) errTimeout(t *testing.T) {
	c.fake.SetFault(halttest.FaultHang)
	defer c.fake.SetFault(halttest.FaultNone)
	a := c.build(c.good())
	calls := []func(ctx context.Context) error{
		func(ctx context.Context) error { return a.Do(ctx, request(c.agent, incidents.ActionHalt)) },
		func(ctx context.Context) error {
			_, err := a.Verify(ctx, request(c.agent, incidents.ActionHalt))
			return err
		},
		func(ctx context.Context) error { return a.Drill(ctx, c.agent) },
	}
	for i, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: got %v, want a deadline error", i, err)
		}
		assertErr(t, err, incidents.EUNAVAILABLE, "")
	}
}

func (c conformance) verifyFalseWhenStateWrong(t *testing.T) {
	c.fake.SetFault(halttest.FaultWrongState)
	defer c.fake.SetFault(halttest.FaultNone)
	a := c.build(c.good())
	if err := a.Do(context.Background(), request(c.agent, incidents.ActionHalt)); err != nil {
		t.Fatalf("Do: %v", err)
	}
	assertVerify(t, a, request(c.agent, incidents.ActionHalt), false)
}

func (c conformance) errMissingCredential(t *testing.T) {
	ctx := context.Background()
	c.fake.Reset()
	a := c.build(env{})
	assertErr(t, a.Do(ctx, request(c.agent, incidents.ActionHalt)), incidents.EINVALID, "$"+c.secret)
	assertErr(t, a.Drill(ctx, c.agent), incidents.EINVALID, "$"+c.secret)
	if got := len(c.fake.Calls()); got != 0 {
		t.Errorf("fake received %d calls, want 0", got)
	}
}

func (c conformance) errWrongCredential(t *testing.T) {
	ctx := context.Background()
	a := c.build(env{c.secret: "wrong-" + c.credential})
	assertErr(t, a.Do(ctx, request(c.agent, incidents.ActionHalt)), incidents.EUNAVAILABLE, "401")
	assertErr(t, a.Drill(ctx, c.agent), incidents.EUNAVAILABLE, "401")
	if c.halted() {
		t.Error("halted with a wrong credential")
	}
}

func (c conformance) errSessionScoped(t *testing.T) {
	ctx := context.Background()
	c.fake.Reset()
	a := c.build(c.good())
	assertErr(t, a.Do(ctx, request(c.agent, incidents.ActionHalt, "s-8812")), incidents.EINVALID, "whole agent")
	_, err := a.Verify(ctx, request(c.agent, incidents.ActionHalt, "s-8812"))
	assertErr(t, err, incidents.EINVALID, "whole agent")
	if got := len(c.fake.Calls()); got != 0 {
		t.Errorf("fake received %d calls, want 0", got)
	}
}

func assertVerify(t *testing.T, a halt.Adapter, r incidents.HaltRequest, want bool) {
	t.Helper()
	got, err := a.Verify(context.Background(), r)
	if err != nil {
		t.Fatalf("Verify %s %v: %v", r.Action, r.Sessions, err)
	}
	if got != want {
		t.Errorf("Verify %s %v = %v, want %v", r.Action, r.Sessions, got, want)
	}
}

// assertErr checks err has the code and its text holds want.
func assertErr(t *testing.T, err error, code, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("got no error, want %s containing %q", code, want)
		return
	}
	if got := incidents.ErrorCode(err); got != code {
		t.Errorf("code = %s, want %s (%v)", got, code, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if msg := incidents.ErrorMessage(err); msg == "Internal error." {
		t.Errorf("error %v has no user-safe message", err)
	}
}

// assertCalls compares the method and path of each call.
func assertCalls(t *testing.T, calls []halttest.Call, want ...string) {
	t.Helper()
	got := make([]string, len(calls))
	for i, c := range calls {
		got[i] = c.Method + " " + c.Path
		if c.RawQuery != "" {
			got[i] += "?" + c.RawQuery
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
