package bot

import (
	"context"
	"fmt"

	"github.com/reins-oss/reins/incidents"
)

// SessionService is the session-record slice of incidents.Service; a
// Service without it answers `/agent session` with a plain refusal.
type SessionService interface {
	// SessionTimeline renders a session's numbered timeline as a message.
	SessionTimeline(ctx context.Context, agent, id string) (incidents.Message, error)
	// PostSessionTimeline posts it in the incident's thread (via the
	// outbox); agent "" is the incident's agent.
	PostSessionTimeline(ctx context.Context, actor incidents.Actor, incidentID int64, agent, id string) error
}

// sessionTimeline answers `/agent session [AGENT] ID`: in an incident
// channel the timeline goes to the incident thread for everyone (agent
// defaulting to the incident's); elsewhere it is shown to the caller only,
// and a session ID two agents use is answered with the question which.
func (h *Handler) sessionTimeline(ctx context.Context, c caller, agent, id string) {
	svc, ok := h.svc.(SessionService)
	if !ok {
		text := "Session records are not enabled on this reins."
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	inc, err := h.svc.IncidentByChannel(ctx, c.channelID)
	switch {
	case err == nil:
		if err := svc.PostSessionTimeline(ctx, c.actor, inc.ID, agent, id); err != nil {
			h.failed(ctx, c, "session", err)
			return
		}
		text := fmt.Sprintf("The timeline of session %s is in the incident thread.", Escape(id))
		h.reply(ctx, c, textBlocks(text), text)
	case incidents.ErrorCode(err) == incidents.ENOTFOUND:
		msg, err := svc.SessionTimeline(ctx, agent, id)
		if err != nil {
			h.failed(ctx, c, "session", err)
			return
		}
		blocks, text := RenderMessage(msg)
		h.reply(ctx, c, blocks, text)
	default:
		h.failed(ctx, c, "find incident by channel", err)
	}
}
