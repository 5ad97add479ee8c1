package bot

import (
	"context"
	"encoding/json"

	"github.com/reins-oss/reins/incidents"
)

// event handles an Events API body. Slack retries an event it thinks we
// missed; the first delivery was acknowledged and handled, so retries are not.
func (h *Handler) event(body []byte, retry bool) (any, error) {
	var outer struct {
		Type      string          `json:"type"`
		Challenge string          `json:"challenge"`
		EventID   string          `json:"event_id"`
		Event     json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, err
	}
	switch {
	case outer.Type == "url_verification":
		return map[string]string{"challenge": outer.Challenge}, nil
	case outer.Type != "event_callback" || retry:
		return nil, nil
	}
	var inner struct {
		Type     string `json:"type"`
		Channel  string `json:"channel"`
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
		BotID    string `json:"bot_id"`
	}
	if err := json.Unmarshal(outer.Event, &inner); err != nil {
		return nil, err
	}
	// A mention is answered with the usage; nothing else in the channel is
	// read, so untrusted text is never taken as a command.
	if inner.Type != "app_mention" || inner.BotID != "" || h.chat == nil {
		return nil, nil
	}
	h.spawn("app_mention", func(ctx context.Context) {
		if first, err := h.svc.Remember(ctx, "slack:event:"+outer.EventID); err == nil && !first {
			return
		}
		thread := inner.ThreadTS
		if thread == "" {
			thread = inner.TS
		}
		_, text := helpReply(Command{Verb: VerbHelp})
		if _, err := h.chat.Post(ctx, incidents.Message{Channel: inner.Channel, ThreadTS: thread, Text: text}); err != nil {
			h.log.Warn("answer app mention", "channel", inner.Channel, "err", err)
		}
	})
	return nil, nil
}
