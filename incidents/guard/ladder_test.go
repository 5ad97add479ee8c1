package guard

import (
	"testing"
	"time"

	"github.com/reins-oss/reins/ownership"
)

func TestRung(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	sla := &ownership.SLA{Name: "tool_scope", OnBreach: "restrict", Ladder: []string{"restrict", "halt_session", "halt_agent"},
		LadderWindow: 10 * time.Minute}
	br := func(id int64, session string, ago time.Duration) Breach {
		return Breach{ID: id, SLA: "tool_scope", Session: session, At: t0.Add(-ago)}
	}
	tests := []struct {
		name   string
		b      Breach
		recent []Breach
		want   string
	}{
		{"FirstBreachFirstRung", br(1, "a", 0), nil, "restrict"},
		{"RepeatSameSessionSecondRung", br(2, "a", 0), []Breach{br(1, "a", time.Minute)}, "halt_session"},
		{"SelfIsNotARepeat", br(2, "a", 0), []Breach{br(2, "a", 0)}, "restrict"},
		{"RepeatPastWindowStartsAgain", br(2, "a", 0), []Breach{br(1, "a", 11*time.Minute)}, "restrict"},
		{"SecondSessionSecondRung", br(2, "b", 0), []Breach{br(1, "a", time.Minute)}, "halt_session"},
		{"ThirdSessionHaltsAgent", br(3, "c", 0), []Breach{br(1, "a", 2*time.Minute), br(2, "b", time.Minute)}, "halt_agent"},
		{"CappedAtTopRung", br(9, "a", 0), []Breach{br(1, "a", 5*time.Minute), br(2, "a", 4*time.Minute), br(3, "a", 3*time.Minute), br(4, "a", time.Minute)}, "halt_agent"},
		{"LaterBreachesDoNotCount", br(1, "a", time.Minute), []Breach{br(2, "a", 0)}, "restrict"},
		{"OtherSLAsDoNotCount", br(2, "a", 0), []Breach{{ID: 1, SLA: "loop", Session: "a", At: t0}}, "restrict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rung(sla, tt.b, tt.recent); got != tt.want {
				t.Errorf("Rung = %s, want %s", got, tt.want)
			}
		})
	}
	if got := Rung(&ownership.SLA{OnBreach: "halt_session"}, br(2, "a", 0), []Breach{br(1, "a", 0)}); got != "halt_session" {
		t.Errorf("without a ladder: %s, want on_breach", got)
	}
}

func TestRepeatKey(t *testing.T) {
	for _, tt := range []struct {
		b    Breach
		want string
	}{{Breach{SLA: "tool_scope"}, "tool_scope"}, {Breach{SLA: "tool_scope", Repeat: 1}, "tool_scope"}, {Breach{SLA: "x", Repeat: 3}, "x#3"}} {
		if got := tt.b.RepeatKey(); got != tt.want {
			t.Errorf("RepeatKey(%+v) = %s, want %s", tt.b, got, tt.want)
		}
		name, n := SplitRepeat(tt.want)
		if name != tt.b.SLA || n != max(tt.b.Repeat, 1) {
			t.Errorf("SplitRepeat(%s) = %s, %d", tt.want, name, n)
		}
	}
}
