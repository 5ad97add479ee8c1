package bot

import (
	"context"
	"fmt"

	"github.com/reins-oss/reins/incidents"
)

// VerbLeave: `/agent leave AGENT SESSION` says to leave a breaching session
// running: its breaches waiting to be acted on (for the automatic-halt
// budget, or a failed halt judged again) end as "left", on the record with
// who said so. Kill authority only.
const VerbLeave = "leave"

// LeaveFunc ends a session's waiting breaches on the word of actor (the
// guard, after the kill-authority check) and says what it did.
type LeaveFunc func(ctx context.Context, actor incidents.Actor, agent, session string) (string, error)

func parseLeaveArgs(c *Command, args []string) {
	if len(args) != 2 {
		c.Err = "Name the agent and one session: `/agent leave AGENT SESSION`."
		return
	}
	c.Agent = args[0]
	c.Sessions = []string{args[1]}
}

func (h *Handler) leave(ctx context.Context, c caller, cmd Command) {
	if h.leaveFn == nil {
		text := ":warning: Leaving sessions running is not available: the guard is not running here."
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	if len(cmd.Sessions) != 1 {
		text := ":warning: Name the agent and one session: `/agent leave AGENT SESSION`."
		h.reply(ctx, c, textBlocks(text), text)
		return
	}
	text, err := h.leaveFn(ctx, c.actor, cmd.Agent, cmd.Sessions[0])
	if err != nil {
		h.failed(ctx, c, "agent leave", err)
		return
	}
	text = fmt.Sprintf(":white_check_mark: %s", Escape(text))
	h.reply(ctx, c, textBlocks(text), text)
}
