package bot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// StateStore keeps what a multi-step Slack interaction needs between its
// steps, in the database every replica shares: Slack delivers the confirm
// click to whichever replica its load balancer picks. incidents/sqlstore
// implements it on both dialects; incidents/incidentstest in memory.
type StateStore interface {
	// SaveConfirmation keeps a pending confirmation under token until expires.
	SaveConfirmation(ctx context.Context, token, userID string, payload []byte, expires time.Time) error
	// FindConfirmation returns who asked and the payload; used is true once
	// a click took it. Unknown or expired: ENOTFOUND.
	FindConfirmation(ctx context.Context, token string, now time.Time) (userID string, payload []byte, used bool, err error)
	// TakeConfirmation consumes the confirmation for userID, who must have
	// asked for it: of any number of concurrent clicks exactly one gets true.
	TakeConfirmation(ctx context.Context, token, userID string, now time.Time) (bool, error)
	// FirstRequest records a request key until expires; true the first time.
	FirstRequest(ctx context.Context, key string, expires time.Time) (bool, error)
	// CountRefusal audits e once per burst under key: a refusal within
	// window of the burst's last one adds to that audit row's count instead
	// of appending a row. It returns the burst's count so far.
	CountRefusal(ctx context.Context, key string, e *incidents.AuditEntry, window time.Duration) (int, error)
	// PruneSlackState deletes what expired before now.
	PruneSlackState(ctx context.Context, now time.Time) (int64, error)
}

// pendingTTL is how long a confirmation button stays good: a halt confirmed
// hours later would act on a stale decision, so the user runs the command
// again instead.
const pendingTTL = 10 * time.Minute

// pruneEvery is how often a replica deletes expired Slack state.
const pruneEvery = time.Minute

// pendingHalt is a halt waiting for its confirmation click, as stored.
// BreakGlass is never stored: a Slack confirmation always re-checks authority.
type pendingHalt struct {
	Action     string          `json:"action"`
	Agent      string          `json:"agent"`
	Sessions   []string        `json:"sessions,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Allow      []string        `json:"allow,omitempty"`
	Rate       int             `json:"rate,omitempty"`
	Actor      incidents.Actor `json:"actor"`
	IncidentID int64           `json:"incident_id,omitempty"`
	ChannelID  string          `json:"channel_id,omitempty"`
}

func (p pendingHalt) command() incidents.HaltCommand {
	return incidents.HaltCommand{Action: p.Action, Agent: p.Agent, Sessions: p.Sessions, Reason: p.Reason,
		Allow: p.Allow, Rate: p.Rate, Actor: p.Actor, IncidentID: p.IncidentID}
}

// saveConfirmation stores cmd for its confirmation click and returns the
// button's token: 128 random bits, so it cannot be guessed.
func (h *Handler) saveConfirmation(ctx context.Context, cmd incidents.HaltCommand, channelID string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token := hex.EncodeToString(b[:])
	payload, err := json.Marshal(pendingHalt{Action: cmd.Action, Agent: cmd.Agent, Sessions: cmd.Sessions,
		Reason: cmd.Reason, Allow: cmd.Allow, Rate: cmd.Rate, Actor: cmd.Actor, IncidentID: cmd.IncidentID, ChannelID: channelID})
	if err != nil {
		return "", fmt.Errorf("encode confirmation: %w", err)
	}
	if err := h.state.SaveConfirmation(ctx, token, cmd.Actor.ID, payload, h.now().Add(pendingTTL)); err != nil {
		return "", err
	}
	h.maybePrune()
	return token, nil
}

// findConfirmation reads a pending halt; ok is false when it is unknown or
// expired, used when a click already took it.
func (h *Handler) findConfirmation(ctx context.Context, token string) (p pendingHalt, userID string, used, ok bool, err error) {
	userID, payload, used, err := h.state.FindConfirmation(ctx, token, h.now())
	if incidents.ErrorCode(err) == incidents.ENOTFOUND {
		return p, "", false, false, nil
	} else if err != nil {
		return p, "", false, false, err
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return p, "", false, false, fmt.Errorf("decode confirmation: %w", err)
	}
	return p, userID, used, true, nil
}

// requestKey is what the store remembers of a signed request: a hash of its
// signature, which covers the timestamp and the whole body.
func requestKey(signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return "slack:v0:" + hex.EncodeToString(sum[:])
}

// maybePrune deletes expired Slack state at most once a minute per replica,
// in the background.
func (h *Handler) maybePrune() {
	now := h.now()
	last := h.lastPrune.Load()
	if now.UnixNano()-last < int64(pruneEvery) || !h.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	h.spawn("prune slack state", func(ctx context.Context) {
		n, err := h.state.PruneSlackState(ctx, h.now())
		if err != nil {
			h.log.Warn("prune slack state", "err", err)
			return
		}
		h.log.Debug("pruned slack state", "rows", n)
	})
}
