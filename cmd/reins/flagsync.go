package main

import (
	"context"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
)

// raiseRecordedHalts raises the kill flag of every agent whose recorded halt
// state (verified halts, whatever the adapter) says halted while its flag
// does not: halts recorded before halts through other adapters were mirrored
// in the flag, or whose mirroring failed. It only raises, never lowers: a
// halt being verified on another replica right now may have raised its flag
// before its record says verified, and lowering it would fail open.
func (m *Main) raiseRecordedHalts(ctx context.Context) {
	sts, err := m.Service.Status(ctx, "")
	if err != nil {
		m.Log.Warn("could not compare kill flags with recorded halts", "err", err)
		return
	}
	for _, st := range sts {
		if st.Agent.Halt.Adapter == halt.AdapterFlag {
			continue // the flag is its halt
		}
		sessions := st.HaltedSessions
		if st.Halted {
			sessions = []string{""}
		}
		for _, s := range sessions {
			if up, _ := m.Flags.Halted(st.Agent.Name, s); up {
				continue
			}
			fl := incidents.KillFlag{Agent: st.Agent.Name, Session: s, Halted: true,
				Reason: "recorded halt (" + st.Agent.Halt.Adapter + ")", Actor: incidents.System}
			if st.LastHalt != nil && st.LastHalt.Action == incidents.ActionHalt {
				fl.Reason, fl.IncidentID = st.LastHalt.Reason, st.LastHalt.IncidentID
			}
			if err := m.Flags.Set(ctx, fl); err != nil {
				m.Log.Warn("could not raise the kill flag of a recorded halt", "agent", st.Agent.Name, "err", err)
			}
		}
	}
}
