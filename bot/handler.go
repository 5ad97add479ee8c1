package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
)

// maxBody is the largest request body accepted on /slack/* (docs/api.md).
const maxBody = 1 << 20

// Config holds the Handler's collaborators and settings.
type Config struct {
	SigningSecret string
	Service       Service
	// State keeps confirmations and handled requests in the database all
	// replicas share. Required.
	State StateStore
	// Authorizer decides kill authority without auditing, so refusals are
	// answered on the request path and audited once per burst; nil: the
	// service's CheckAuthority decides in the background, as for allowed halts.
	Authorizer Authorizer
	Chat       *Chat // nil: Slack Web API not configured; replies still go to response_url
	Log        *slog.Logger
	Now        func() time.Time // nil: time.Now
	// PublicURL is REINS_PUBLIC_URL: `/agent status` links each open
	// incident to its page in the web view.
	PublicURL string
	// Workers bounds the background jobs running at once (halts have
	// haltWorkers more of their own); 0: 64.
	Workers int
	// WorkTimeout bounds one background job (a halt with its retries and
	// read-back included); 0: 2 minutes.
	WorkTimeout time.Duration
	// HTTPClient posts to response_url when Chat is nil; nil: a 10 s client.
	HTTPClient *http.Client
	// SLAStatus, when set, renders one agent's SLAs as the guard sees them
	// ("" for none): `/agent status AGENT` shows it under the halt state.
	SLAStatus func(ctx context.Context, agent string) (string, error)
	// Leave, when set, runs `/agent leave AGENT SESSION` (the guard).
	Leave LeaveFunc
}

// Handler serves Slack's slash commands, interactions and events, over HTTP or
// Socket Mode. Every request is acknowledged at once; the work (authority
// checks, halts, store writes) runs in the background and answers through
// response_url or the Web API, because Slack gives up after 3 s.
type Handler struct {
	verifier Verifier
	svc      Service
	chat     *Chat
	log      *slog.Logger
	state    StateStore
	auth     Authorizer
	now      func() time.Time
	refusals *refusalLimiter
	// lastPrune is when this replica last pruned expired state (UnixNano).
	lastPrune atomic.Int64
	acks      *ackClock  // when acks are served, for commands' work to yield to
	later     laterQueue // commands' work, until the acks are quiet
	statuses  statusReads
	sem       chan struct{}
	haltSem   chan struct{} // haltWorkers slots for kill, resume and confirmations
	timeout   time.Duration
	client    *http.Client
	wg        sync.WaitGroup

	publicURL string
	slaStatus func(ctx context.Context, agent string) (string, error)
	leaveFn   LeaveFunc
}

// NewHandler returns a Handler; zero settings get their defaults.
func NewHandler(cfg Config) *Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	h := &Handler{
		verifier: Verifier{Secret: cfg.SigningSecret, Now: cfg.Now},
		svc:      cfg.Service,
		chat:     cfg.Chat,
		log:      cfg.Log,
		state:    cfg.State,
		auth:     cfg.Authorizer,
		now:      cfg.Now,
		refusals: newRefusalLimiter(),
		acks:     newAckClock(),
		sem:      make(chan struct{}, cfg.Workers),
		haltSem:  make(chan struct{}, haltWorkers),
		timeout:  cfg.WorkTimeout,
		client:   cfg.HTTPClient,
	}
	h.publicURL = cfg.PublicURL
	h.slaStatus = cfg.SLAStatus
	h.leaveFn = cfg.Leave
	return h
}

// Commands serves POST /slack/commands. Its requests are single-use too,
// but their mark is taken after the ack, before their work (useOnce).
func (h *Handler) Commands() http.Handler {
	return h.signed(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sc, err := slashFromBody(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "malformed form body")
			return
		}
		writeAck(w, h.command(sc, h.markOf(r.Header)))
	}, false)
}

// Interactions serves POST /slack/interactions. slack-go's
// InteractionCallbackParse would read the body again, which the signature
// check already consumed, so the form is parsed here.
func (h *Handler) Interactions() http.Handler {
	return h.signed(func(w http.ResponseWriter, r *http.Request, body []byte) {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			writeError(w, http.StatusBadRequest, "missing interaction payload")
			return
		}
		var ic slack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &ic); err != nil {
			writeError(w, http.StatusBadRequest, "malformed interaction payload")
			return
		}
		writeAck(w, h.interaction(ic))
	}, true)
}

// Events serves POST /slack/events, answering url_verification's challenge.
func (h *Handler) Events() http.Handler {
	return h.signed(func(w http.ResponseWriter, r *http.Request, body []byte) {
		ack, err := h.event(body, r.Header.Get(headerRetryNum) != "")
		if err != nil {
			writeError(w, http.StatusBadRequest, "malformed event")
			return
		}
		writeAck(w, ack)
	}, false)
}

// Wait blocks until the background work started so far has finished.
func (h *Handler) Wait() { h.wg.Wait() }

// signed reads the body (at most 1 MiB), verifies Slack's signature and only
// then calls next: an unsigned request never reaches the service. A
// singleUse request (one that changes state) is also dropped when its
// signature was seen before: whoever captured a signed request cannot
// replay it within the 5-minute window, on this replica or another.
func (h *Handler) signed(next func(http.ResponseWriter, *http.Request, []byte), singleUse bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.acks.serving()
		defer h.acks.served()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
				return
			}
			writeError(w, http.StatusBadRequest, "could not read body")
			return
		}
		if err := h.verifier.Verify(r.Header, body); err != nil {
			h.log.Warn("slack request refused", "path", r.URL.Path, "err", err)
			writeError(w, http.StatusUnauthorized, "invalid Slack signature")
			return
		}
		if singleUse {
			ts, _ := strconv.ParseInt(r.Header.Get(headerTimestamp), 10, 64) // Verify parsed it
			expires := time.Unix(ts, 0).Add(MaxSkew + time.Second)
			first, err := h.firstRequest(r.Context(), requestKey(r.Header.Get(headerSignature)), expires)
			if err != nil {
				writeAck(w, ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: storeDownText})
				return
			}
			if !first {
				h.log.Debug("slack request replayed: dropped", "path", r.URL.Path)
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		next(w, r, body)
	})
}

// markOf is the single-use mark of a verified request, not yet taken.
func (h *Handler) markOf(header http.Header) *useOnce {
	ts, _ := strconv.ParseInt(header.Get(headerTimestamp), 10, 64) // Verify parsed it
	return &useOnce{h: h, signature: header.Get(headerSignature), expires: time.Unix(ts, 0).Add(MaxSkew + time.Second)}
}

// useOnce is a slash command's single-use mark, taken when the command is
// about to change something rather than before its ack (issue 25). Commands
// are acknowledged with nothing but a verified signature, as Slack wants
// within 3 s; the work after the ack then waits for the mark to commit and
// runs only if this request was the first to take it. The store's primary
// key still decides "first" at commit, so a replay is acted on once whichever
// replica each copy reaches; only the (empty) ack is given to both. Marks
// taken this way from concurrent commands share one statement
// (sqlstore's group commit), and none of them waits on the ack path.
//
// A nil *useOnce is a mark already taken (Socket Mode checks redelivery
// before dispatch; unit tests call command directly).
type useOnce struct {
	h         *Handler
	signature string // its key is hashed from it when taken, off the ack
	expires   time.Time

	once  sync.Once
	first bool
	err   error
}

const (
	// markWait bounds taking a mark after the ack: no ack waits for it, so
	// it may take longer than the ack path's bound, but a command stuck
	// behind a store that does not answer is told so rather than run much
	// later.
	markWait = 10 * time.Second
	// ackMarkWait bounds taking a mark on the request path (a refusal),
	// so that the ack still beats Slack's 3 s.
	ackMarkWait = 2 * time.Second
)

// claim takes the mark once, within wait (later calls return the first
// call's result): true if this request is the first to take it.
func (u *useOnce) claim(ctx context.Context, wait time.Duration) (bool, error) {
	if u == nil {
		return true, nil
	}
	u.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
		defer cancel()
		u.first, u.err = u.h.markFirst(ctx, requestKey(u.signature), u.expires)
	})
	return u.first, u.err
}

// storeDownText answers a request that could not be checked against replays.
const storeDownText = ":warning: reins cannot reach its database, so it did nothing. Try again in a minute; to halt an agent now, run `reins kill AGENT --reason TEXT` on the reins host."

// firstRequest records key in the store, bounded in time so the ack still
// beats Slack's 3 s. An error fails closed: a request that may be a replay
// (a resume undoing a later halt) is not run.
func (h *Handler) firstRequest(ctx context.Context, key string, expires time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	return h.markFirst(ctx, key, expires)
}

// markFirst records key in the store within ctx; true the first time.
func (h *Handler) markFirst(ctx context.Context, key string, expires time.Time) (bool, error) {
	first, err := h.state.FirstRequest(ctx, key, expires)
	if err != nil {
		h.log.Error("check slack request against replays", "err", err)
		return false, err
	}
	h.maybePrune()
	return first, nil
}

// ackMessage is an immediate reply in the HTTP response or Socket Mode ack.
type ackMessage struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func writeAck(w http.ResponseWriter, ack any) {
	if ack == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ack)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// slashFields are the form fields of a slash command that reins reads, in
// slashFieldOf's order.
var slashFields = [...]string{"team_id", "team_domain", "channel_id", "channel_name", "user_id",
	"user_name", "command", "text", "response_url", "trigger_id", "api_app_id"}

// slashFieldOf is the field of sc that slashFields[i] fills.
func slashFieldOf(sc *slack.SlashCommand, i int) *string {
	return [...]*string{&sc.TeamID, &sc.TeamDomain, &sc.ChannelID, &sc.ChannelName, &sc.UserID,
		&sc.UserName, &sc.Command, &sc.Text, &sc.ResponseURL, &sc.TriggerID, &sc.APIAppID}[i]
}

// slashFromBody reads a slash command's form body as url.ParseQuery does
// (the first value of a field counts; a malformed escape or a semicolon is an
// error), keeping only the fields a command uses: on the ack path, where
// every microsecond is one the floor does not spend (issue 25), building
// the whole url.Values was a third of the ack's own work.
func slashFromBody(body []byte) (slack.SlashCommand, error) {
	var sc slack.SlashCommand
	var seen uint16
	for rest := string(body); rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if strings.Contains(pair, ";") {
			return sc, errors.New("invalid semicolon separator in form body")
		}
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				return sc, err
			}
		}
		i := slices.Index(slashFields[:], key)
		first := i >= 0 && seen&(1<<i) == 0
		if first || strings.ContainsAny(value, "%+") {
			v, err := url.QueryUnescape(value)
			if err != nil {
				return sc, err
			}
			if first {
				*slashFieldOf(&sc, i), seen = v, seen|1<<i
			}
		}
	}
	return sc, nil
}

// caller is who started some work and where the answer goes.
type caller struct {
	actor       incidents.Actor
	channelID   string
	responseURL string
	// viaChannel answers with chat.postEphemeral in channelID (buttons on
	// channel messages, modals); response_url is then the fallback.
	viaChannel bool
	// asked is when the request reached this replica (zero: unknown): a
	// read begun after it may answer it (sharedStatus).
	asked time.Time
}

func slackActor(userID, name string) incidents.Actor {
	return incidents.Actor{Kind: incidents.ActorSlack, ID: userID, Name: name}
}

// command acknowledges a slash command and starts its work, which runs once
// use is taken (see useOnce). A non-nil result is the immediate answer: help
// and parse errors need no service call, and change nothing, so they need
// no mark either.
func (h *Handler) command(sc slack.SlashCommand, use *useOnce) any {
	cmd := ParseCommand(sc.Text)
	if cmd.Verb == VerbHelp || cmd.Err != "" {
		blocks, text := helpReply(cmd)
		return ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text, Blocks: blocks}
	}
	c := caller{actor: slackActor(sc.UserID, sc.UserName), channelID: sc.ChannelID, responseURL: sc.ResponseURL, asked: time.Now()}
	sem := h.sem
	if cmd.Verb == VerbKill || cmd.Verb == VerbResume || cmd.Verb == VerbRestrict || cmd.Verb == VerbThrottle {
		// A refusal is answered here, in the ack: refused attempts never
		// take, or wait for, a halt worker. It is audited, so it takes the
		// mark first (refusals are few: rate-limited per user).
		text, replay := h.refuse(context.Background(), haltCommand(cmd, c.actor), use)
		switch {
		case replay:
			return nil
		case text != "":
			return refusedAck(text)
		}
		sem = h.haltSem
	}
	queued := c.asked
	first := func(ctx context.Context) bool {
		first, err := use.claim(ctx, markWait)
		switch {
		case err != nil:
			h.reply(ctx, c, textBlocks(storeDownText), storeDownText)
			return false
		case !first:
			h.log.Debug("slack request replayed: dropped", "command", cmd.Verb)
			return false
		}
		return true
	}
	h.afterAcks(sem, "command "+cmd.Verb, first, func(ctx context.Context) {
		h.acks.yield(queued)
		h.runCommand(ctx, c, cmd)
	})
	return nil
}

// haltWorkers is how many halts, resumes and confirmations run at once.
const haltWorkers = 2

// spawn runs fn in the background with a context detached from the request
// (Slack closes it after the ack) and bounded in time. At most Workers jobs
// run at once; the rest wait for a slot rather than delay the ack.
func (h *Handler) spawn(what string, fn func(ctx context.Context)) { h.spawnOn(h.sem, what, fn) }

// spawnHalt is spawn for halts and resumes: they have workers of their own,
// so a kill never waits behind status queries or checklist chatter.
func (h *Handler) spawnHalt(what string, fn func(ctx context.Context)) {
	h.spawnOn(h.haltSem, what, fn)
}

func (h *Handler) spawnOn(sem chan struct{}, what string, fn func(ctx context.Context)) {
	h.spawnAfter(sem, what, nil, fn)
}

// spawnAfter is spawnOn whose fn runs only if gate, called before a worker
// is taken, says so: waiting for a single-use mark takes no worker, so the
// marks of a burst are written together while the workers do earlier work.
func (h *Handler) spawnAfter(sem chan struct{}, what string, gate func(ctx context.Context) bool, fn func(ctx context.Context)) {
	h.wg.Add(1)
	go h.runJob(sem, what, gate, fn)
}

// runJob is spawnAfter's goroutine; the caller has added it to h.wg.
func (h *Handler) runJob(sem chan struct{}, what string, gate func(ctx context.Context) bool, fn func(ctx context.Context)) {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if gate != nil && !gate(ctx) {
		return
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		h.log.Error("slack work dropped: no worker free", "work", what)
		return
	}
	defer func() { <-sem }()
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("slack work panicked", "work", what, "panic", r)
		}
	}()
	fn(ctx)
}

// errNoWebAPI is returned when an answer needs the Web API and Slack's bot
// token is not configured.
var errNoWebAPI = errors.New("slack web API not configured (SLACK_BOT_TOKEN unset)")

// reply sends an answer only the caller sees.
func (h *Handler) reply(ctx context.Context, c caller, blocks []slack.Block, text string) {
	if c.viaChannel && c.channelID != "" && h.chat != nil {
		err := h.chat.PostEphemeral(ctx, c.channelID, c.actor.ID, blocks, text)
		if err == nil {
			return
		}
		if c.responseURL == "" {
			h.log.Warn("post ephemeral reply", "channel", c.channelID, "user", c.actor.ID, "err", err)
			return
		}
	}
	if c.responseURL == "" {
		h.log.Warn("reply dropped: no channel or response_url", "user", c.actor.ID)
		return
	}
	if err := h.respond(ctx, c.responseURL, blocks, text, true, false); err != nil {
		h.log.Warn("reply via response_url", "user", c.actor.ID, "err", err)
	}
}

// respond posts to a response_url, through Chat when the Web API is set up
// (it needs no token either way).
func (h *Handler) respond(ctx context.Context, responseURL string, blocks []slack.Block, text string, ephemeral, replace bool) error {
	if h.chat != nil {
		return h.chat.Respond(ctx, responseURL, blocks, text, ephemeral, replace)
	}
	typ := slack.ResponseTypeInChannel
	if ephemeral {
		typ = slack.ResponseTypeEphemeral
	}
	msg := &slack.WebhookMessage{Text: text, ResponseType: typ, ReplaceOriginal: replace}
	if len(blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: blocks}
	}
	return redactURL(slack.PostWebhookCustomHTTPContext(ctx, responseURL, h.client, msg))
}

// redactURL drops the URL from a failed post to a response_url: the URL is
// a credential (anyone holding it can post as reins for 30 minutes), and
// net/http puts it in every error it returns.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("post to response_url: %w", ue.Err)
}

// errorReplies is the one table from domain error codes to what a Slack user
// reads: whether the error's own (user-safe) message is shown, and what to do next.
var errorReplies = map[string]struct {
	showMessage bool
	next        string
}{
	incidents.ECONFLICT:     {true, ""},
	incidents.EINVALID:      {true, "See `/agent help`."},
	incidents.ENOTFOUND:     {true, ""},
	incidents.EFORBIDDEN:    {true, ""},
	incidents.EUNAUTHORIZED: {true, ""},
	incidents.EUNAVAILABLE:  {true, "Try again in a minute; if it persists, use `reins kill` on the host."},
	incidents.EINTERNAL:     {false, "Something went wrong on reins' side; the error is logged. Try again, or use `reins kill` on the host."},
}

// userError renders err for the user.
func userError(err error) string {
	r, ok := errorReplies[incidents.ErrorCode(err)]
	if !ok {
		r = errorReplies[incidents.EINTERNAL]
	}
	text := r.next
	if r.showMessage {
		text = joinSentences(Escape(incidents.ErrorMessage(err)), r.next)
	}
	return text
}

// failed logs err (once, here where it is handled) and tells the caller.
func (h *Handler) failed(ctx context.Context, c caller, what string, err error) {
	switch incidents.ErrorCode(err) {
	case incidents.EINTERNAL, incidents.EUNAVAILABLE:
		h.log.Error(what, "user", c.actor.ID, "err", err)
	default:
		h.log.Info(what, "user", c.actor.ID, "err", err)
	}
	text := ":warning: " + userError(err)
	h.reply(ctx, c, textBlocks(text), text)
}

func joinSentences(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}
