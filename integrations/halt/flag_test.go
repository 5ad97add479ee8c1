package halt_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestFlagsHalted(t *testing.T) {
	f := halt.NewFlags(halttest.NewFlagStore(), clock(epoch))
	ctx := context.Background()
	for _, fl := range []incidents.KillFlag{
		{Agent: "support-bot", Halted: true, Reason: "spend"},
		{Agent: "billing-bot", Session: "s-1", Halted: true, Reason: "loop"},
		{Agent: "billing-bot", Session: "s-2", Halted: false},
	} {
		if err := f.Set(ctx, fl); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, agent, session string
		want                 bool
		wantReason           string
	}{
		{"AgentWide", "support-bot", "", true, "spend"},
		{"AgentWideCoversSessions", "support-bot", "s-9", true, "spend"},
		{"SessionHalted", "billing-bot", "s-1", true, "loop"},
		{"SessionLifted", "billing-bot", "s-2", false, ""},
		{"OtherSession", "billing-bot", "s-3", false, ""},
		{"AgentOfSessionNotHalted", "billing-bot", "", false, ""},
		{"UnknownAgent", "ghost", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fl := f.Halted(tt.agent, tt.session)
			if got != tt.want || fl.Reason != tt.wantReason {
				t.Errorf("got %v %q, want %v %q", got, fl.Reason, tt.want, tt.wantReason)
			}
		})
	}
	var keys []string
	for _, fl := range f.Snapshot() {
		keys = append(keys, fl.Agent+"/"+fl.Session)
		if !fl.UpdatedAt.Equal(epoch) {
			t.Errorf("%s/%s UpdatedAt %v, want %v", fl.Agent, fl.Session, fl.UpdatedAt, epoch)
		}
	}
	if want := []string{"billing-bot/s-1", "billing-bot/s-2", "support-bot/"}; !slices.Equal(keys, want) {
		t.Errorf("snapshot %v, want %v", keys, want)
	}
}

// TestFlagsReplicas: two Flags on one store behave like two reins replicas.
func TestFlagsReplicas(t *testing.T) {
	store := halttest.NewFlagStore()
	a := halt.NewFlags(store, clock(epoch))
	b := halt.NewFlags(store, clock(epoch))
	ctx := context.Background()
	if err := a.Set(ctx, incidents.KillFlag{Agent: "support-bot", Halted: true, Actor: alice}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Halted("support-bot", ""); got {
		t.Fatal("b sees the flag before loading")
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, fl := b.Halted("support-bot", ""); !got || fl.Actor != alice {
		t.Fatalf("b after Load: %v %+v, want halted by alice", got, fl)
	}
	if err := b.Set(ctx, incidents.KillFlag{Agent: "support-bot", Halted: false}); err != nil {
		t.Fatal(err)
	}
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Halted("support-bot", ""); got {
		t.Error("a still halted after b lifted the flag and a loaded")
	}
}

func TestFlagsErrStore(t *testing.T) {
	store := halttest.NewFlagStore()
	f := halt.NewFlags(store, clock(epoch))
	ctx := context.Background()
	if err := f.Set(ctx, incidents.KillFlag{Agent: "support-bot", Halted: true}); err != nil {
		t.Fatal(err)
	}
	store.Fail(errors.New("database is down"))
	if err := f.Set(ctx, incidents.KillFlag{Agent: "billing-bot", Halted: true}); err == nil {
		t.Error("Set succeeded with the store down")
	}
	if got, _ := f.Halted("billing-bot", ""); got {
		t.Error("flag visible in memory though the store refused it")
	}
	if err := f.Load(ctx); err == nil {
		t.Error("Load succeeded with the store down")
	}
	if got, _ := f.Halted("support-bot", ""); !got {
		t.Error("a failed Load dropped the flags in memory")
	}
	if err := f.Set(ctx, incidents.KillFlag{Halted: true}); incidents.ErrorCode(err) != incidents.EINVALID {
		t.Errorf("Set without agent: %v, want EINVALID", err)
	}
}

func flagAgent() *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterFlag}}
}

func TestFlagAdapter(t *testing.T) {
	agent := flagAgent()
	halts := func(s ...string) incidents.HaltRequest { return request(agent, incidents.ActionHalt, s...) }
	resumes := func(s ...string) incidents.HaltRequest { return request(agent, incidents.ActionResume, s...) }
	tests := []struct {
		name     string
		do       []incidents.HaltRequest
		wantCode string // of the last Do
		holds    []incidents.HaltRequest
		fails    []incidents.HaltRequest
	}{
		{"HaltWhole", []incidents.HaltRequest{halts(), halts()}, "",
			[]incidents.HaltRequest{halts(), halts("s-1")}, []incidents.HaltRequest{resumes(), resumes("s-1")}},
		{"HaltSessions", []incidents.HaltRequest{halts("s-1", "s-2")}, "",
			[]incidents.HaltRequest{halts("s-1", "s-2"), halts("s-2"), resumes("s-3")},
			[]incidents.HaltRequest{halts(), halts("s-1", "s-3"), resumes()}},
		{"ResumeOneSession", []incidents.HaltRequest{halts("s-1", "s-2"), resumes("s-1")}, "",
			[]incidents.HaltRequest{resumes("s-1"), halts("s-2")}, []incidents.HaltRequest{resumes()}},
		{"ResumeWholeLiftsSessions", []incidents.HaltRequest{halts("s-1"), halts(), resumes()}, "",
			[]incidents.HaltRequest{resumes(), resumes("s-1")}, []incidents.HaltRequest{halts("s-1")}},
		{"ErrResumeSessionOfHaltedAgent", []incidents.HaltRequest{halts(), resumes("s-1")}, incidents.ECONFLICT,
			[]incidents.HaltRequest{halts()}, []incidents.HaltRequest{resumes("s-1")}},
		{"ErrUnknownAction", []incidents.HaltRequest{request(agent, "pause")}, incidents.EINVALID, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags := halt.NewFlags(halttest.NewFlagStore(), clock(epoch))
			a := halt.NewFlagAdapter(flags, clock(epoch))
			var err error
			for _, r := range tt.do {
				err = a.Do(context.Background(), r)
			}
			if got := incidents.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("last Do: %v, want code %q", err, tt.wantCode)
			}
			for _, r := range tt.holds {
				assertVerify(t, a, r, true)
			}
			for _, r := range tt.fails {
				assertVerify(t, a, r, false)
			}
		})
	}
}

func TestFlagAdapterStore(t *testing.T) {
	store := halttest.NewFlagStore()
	flags := halt.NewFlags(store, clock(epoch))
	a := halt.NewFlagAdapter(flags, clock(epoch))
	ctx := context.Background()
	if err := a.Drill(ctx, flagAgent()); err != nil {
		t.Fatalf("Drill: %v", err)
	}
	if store.Sets() != 0 {
		t.Errorf("drill wrote %d flags", store.Sets())
	}
	if err := a.Do(ctx, request(flagAgent(), incidents.ActionHalt, "s-8812")); err != nil {
		t.Fatal(err)
	}
	_, fl := flags.Halted("support-bot", "s-8812")
	want := incidents.KillFlag{Agent: "support-bot", Session: "s-8812", Halted: true, Mode: incidents.ModeHalted,
		Reason: "looping on refunds", Actor: alice, IncidentID: 42, UpdatedAt: epoch}
	if !reflect.DeepEqual(fl, want) {
		t.Errorf("flag %+v, want %+v", fl, want)
	}
	store.Fail(errors.New("database is down"))
	assertErr(t, a.Drill(ctx, flagAgent()), incidents.EUNAVAILABLE, "database is down")
	if err := a.Do(ctx, request(flagAgent(), incidents.ActionHalt)); err == nil {
		t.Error("Do succeeded with the store down")
	}
	assertVerify(t, a, request(flagAgent(), incidents.ActionHalt), false)
}
