package bot

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode serves the same commands, interactions and events over a
// Socket Mode connection (no public URL needed) until ctx ends. Each envelope
// is acknowledged at once, with the answer an HTTP response would carry.
// Socket Mode messages come over an authenticated WebSocket, so there is no
// signature to check.
func (h *Handler) RunSocketMode(ctx context.Context, api *slack.Client, appToken string) error {
	smc := socketmode.New(api)
	// socketmode.New copied api; the copy is the one that needs the app token.
	slack.OptionAppLevelToken(appToken)(&smc.Client)
	go h.socketLoop(ctx, smc)
	if err := smc.RunContext(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("socket mode: %w", err)
	}
	return nil
}

func (h *Handler) socketLoop(ctx context.Context, smc *socketmode.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-smc.Events:
			if evt.Request == nil || evt.Request.EnvelopeID == "" {
				h.socketStatus(evt)
				continue
			}
			if h.redelivered(ctx, evt.Request) {
				if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
					h.log.Warn("socket mode ack", "type", evt.Request.Type, "err", err)
				}
				continue
			}
			ack, err := h.envelope(evt.Request)
			if err != nil {
				h.log.Warn("socket mode envelope", "type", evt.Request.Type, "err", err)
			}
			if err := smc.AckCtx(ctx, evt.Request.EnvelopeID, ack); err != nil {
				h.log.Warn("socket mode ack", "type", evt.Request.Type, "err", err)
			}
		}
	}
}

// redelivered says whether a command or interaction envelope was handled
// before, by this replica or another: Slack sends an envelope again when
// its ack was lost, and the first delivery may already have halted or
// resumed. A store that cannot answer fails open here, since the envelope
// comes over reins' own authenticated connection, not from a replayer.
func (h *Handler) redelivered(ctx context.Context, req *socketmode.Request) bool {
	if req.Type != socketmode.RequestTypeSlashCommands && req.Type != socketmode.RequestTypeInteractive {
		return false
	}
	first, err := h.firstRequest(ctx, "slack:socket:"+req.EnvelopeID, h.now().Add(MaxSkew))
	if err == nil && !first {
		h.log.Debug("socket mode envelope redelivered: dropped", "type", req.Type)
		return true
	}
	return false
}

// envelope routes one Socket Mode request to the dispatch the HTTP handlers
// use, returning the ack payload.
func (h *Handler) envelope(req *socketmode.Request) (any, error) {
	switch req.Type {
	case socketmode.RequestTypeSlashCommands:
		var sc slack.SlashCommand
		if err := json.Unmarshal(req.Payload, &sc); err != nil {
			return nil, fmt.Errorf("parse slash command: %w", err)
		}
		return h.command(sc, nil), nil // redelivered took its mark
	case socketmode.RequestTypeInteractive:
		var ic slack.InteractionCallback
		if err := json.Unmarshal(req.Payload, &ic); err != nil {
			return nil, fmt.Errorf("parse interaction: %w", err)
		}
		return h.interaction(ic), nil
	case socketmode.RequestTypeEventsAPI:
		return h.event(req.Payload, req.RetryAttempt > 0)
	}
	return nil, nil
}

func (h *Handler) socketStatus(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		h.log.Info("slack socket mode connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeIncomingError:
		h.log.Warn("slack socket mode", "event", string(evt.Type), "detail", fmt.Sprint(evt.Data))
	}
}
