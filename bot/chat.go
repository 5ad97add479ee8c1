package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// Chat is incidents.Chat on the Slack Web API. It renders the domain's views
// with the Render… functions, resolves people and channel names, and maps
// Slack failures to what delivery needs: RetryAfterError for rate limits,
// PermanentError for failures a retry cannot fix.
type Chat struct {
	api  *slack.Client
	log  *slog.Logger
	http *http.Client // for response_url posts

	dir *Directory

	mu        sync.Mutex
	channels  map[string]string // channel name -> ID
	botUserID string            // from auth.test, once needed
}

var _ incidents.Chat = (*Chat)(nil)

// NewChat returns a Chat using api. log may be nil.
func NewChat(api *slack.Client, log *slog.Logger) *Chat {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Chat{api: api, log: log, dir: NewDirectory(api), http: &http.Client{Timeout: 10 * time.Second}, channels: map[string]string{}}
}

// permanentErrors are Slack errors no retry can fix: the channel is gone or
// closed to us, the token is bad, or the request itself is wrong.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "channel_is_archived": true,
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "missing_scope": true, "not_allowed_token_type": true,
	"restricted_action": true, "ekm_access_denied": true, "team_access_not_granted": true,
	"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "no_text": true,
	"invalid_arguments": true, "invalid_name": true, "invalid_name_specials": true,
	"invalid_name_maxlength": true, "invalid_name_required": true, "invalid_name_punctuation": true,
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true,
	"user_not_in_channel": true, "invalid_link": true, "invalid_title": true, "too_long": true,
	"expired_trigger_id": true, "invalid_trigger_id": true, "exchanged_trigger_id": true,
	"view_too_large": true, "not_found": true, "file_not_found": true,
}

// classify wraps err with op and marks it for delivery: Slack failing as a
// whole (a rate limit, a 5xx, no connection, Slack's own internal errors) is
// an UnavailableError, which holds every Slack delivery behind one probe at
// a time rather than backing off item by item (see incidents/outbox,
// circuit.go); a failure a retry cannot fix is a PermanentError; anything
// else is retried with backoff.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("%s: %w", op, err)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return outbox.Unavailable(&outbox.RetryAfterError{After: rl.RetryAfter, Err: wrapped}, rl.RetryAfter)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests {
		return outbox.Unavailable(&outbox.RetryAfterError{After: time.Second, Err: wrapped}, time.Second)
	}
	if errors.As(err, &sc) && sc.Code >= 500 {
		return outbox.Unavailable(wrapped, 0)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return outbox.Unavailable(wrapped, 0) // refused, reset, timed out: Slack cannot be reached
	}
	code := slackErrorCode(err)
	if unavailableErrors[code] {
		return outbox.Unavailable(wrapped, 0)
	}
	if permanentErrors[code] {
		return outbox.Permanent(wrapped)
	}
	return wrapped
}

// unavailableErrors are Slack error codes that say Slack itself is failing
// (docs.slack.dev: "fatal_error", "internal_error", "service_unavailable",
// "request_timeout", "ratelimited" without a 429).
var unavailableErrors = map[string]bool{
	"fatal_error": true, "internal_error": true, "service_unavailable": true, "request_timeout": true, "ratelimited": true,
}

// slackErrorCode returns Slack's error string ("channel_not_found"), or "".
func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

var channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{6,}$`)

// ownChannel returns the ID of the live channel named name when reins itself
// created it: a retry after a crash between Slack creating the channel and
// reins recording it adopts that channel instead of opening a second one.
func (c *Chat) ownChannel(ctx context.Context, name string) (string, bool) {
	id, err := c.channelID(ctx, name)
	if err != nil {
		return "", false
	}
	info, err := c.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil || info.IsArchived {
		return "", false
	}
	c.mu.Lock()
	bot := c.botUserID
	c.mu.Unlock()
	if bot == "" {
		auth, err := c.api.AuthTestContext(ctx)
		if err != nil {
			return "", false
		}
		bot = auth.UserID
		c.mu.Lock()
		c.botUserID = bot
		c.mu.Unlock()
	}
	return id, info.Creator == bot
}

// CreateChannel creates the channel, adding -2, -3 … when the name is taken
// (a channel left over from another install, or an archived one).
func (c *Chat) CreateChannel(ctx context.Context, name string, private bool) (string, string, error) {
	base := ChannelName(name)
	if base == "" {
		return "", "", outbox.Permanent(fmt.Errorf("create channel %q: no usable characters in the name", name))
	}
	for n := 1; n <= 50; n++ {
		candidate := base
		if n > 1 {
			suffix := "-" + strconv.Itoa(n)
			candidate = strings.TrimRight(base[:min(len(base), maxChannelNameLen-len(suffix))], "-_") + suffix
		}
		ch, err := c.api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: candidate, IsPrivate: private})
		if slackErrorCode(err) == "name_taken" {
			if n == 1 {
				if id, ok := c.ownChannel(ctx, candidate); ok {
					return id, candidate, nil
				}
			}
			continue
		}
		if err != nil {
			return "", "", classify("create channel "+candidate, err)
		}
		c.remember(ch.Name, ch.ID)
		return ch.ID, ch.Name, nil
	}
	return "", "", outbox.Permanent(fmt.Errorf("create channel %s: names up to -50 are all taken", base))
}

// SetTopic sets the channel topic: one line of at most 250 characters.
// Slack renders <@U…>, <!subteam^…> and <!here> in a topic as it does in a
// message, and the topic quotes alert text, so it is escaped like a message.
func (c *Chat) SetTopic(ctx context.Context, channelID, topic string) error {
	_, err := c.api.SetTopicOfConversationContext(ctx, channelID, EscapeLimit(PlainText(topic), MaxTopic))
	return classify("set topic of "+channelID, err)
}

// inviteBatch is the most users one conversations.invite call takes here.
const inviteBatch = 100

// skipInvite are invite errors about one person that must not stop the others.
var skipInvite = map[string]bool{
	"already_in_channel": true, "cant_invite_self": true, "user_not_found": true, "cant_invite": true,
	"user_is_restricted": true, "user_is_ultra_restricted": true, "ura_max_channels": true,
	"user_is_deactivated": true, "user_team_not_in_channel": true,
}

// Invite adds people (user IDs, user-group IDs, e-mails) to a channel in
// batches of 100. Anyone who cannot be resolved, or is already in, is skipped;
// bare names (RACI "informed" channels) are not people and are skipped too.
func (c *Chat) Invite(ctx context.Context, channelID string, people []string) error {
	users, err := c.resolvePeople(ctx, people)
	if err != nil {
		return err
	}
	for start := 0; start < len(users); start += inviteBatch {
		if err := c.inviteBatch(ctx, channelID, users[start:min(start+inviteBatch, len(users))]); err != nil {
			return err
		}
	}
	return nil
}

// inviteBatch invites users at once; when one of them spoils the call (Slack
// invites nobody then), it invites them one by one so the rest get in.
func (c *Chat) inviteBatch(ctx context.Context, channelID string, users []string) error {
	_, err := c.api.InviteUsersToConversationContext(ctx, channelID, users...)
	code := slackErrorCode(err)
	switch {
	case err == nil, len(users) == 1 && skipInvite[code]:
		return nil
	case !skipInvite[code]:
		return classify(fmt.Sprintf("invite %d people to %s", len(users), channelID), err)
	}
	for _, u := range users {
		_, err := c.api.InviteUsersToConversationContext(ctx, channelID, u)
		if err != nil && !skipInvite[slackErrorCode(err)] {
			return classify(fmt.Sprintf("invite %s to %s", u, channelID), err)
		}
	}
	return nil
}

// resolvePeople turns people into distinct user IDs, in order. A person
// Slack does not know is logged and skipped; an outage is returned.
func (c *Chat) resolvePeople(ctx context.Context, people []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(ids ...string) {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	for _, p := range people {
		p = strings.TrimSpace(p)
		var ids []string
		var err error
		switch {
		case userID.MatchString(p):
			ids = []string{p}
		case groupID.MatchString(p):
			ids, err = c.dir.UsergroupMembers(ctx, p)
		case strings.Contains(p, "@"):
			var id string
			id, err = c.dir.UserByEmail(ctx, p)
			ids = []string{id}
		default:
			c.log.Debug("invite: not a person, skipped", "entry", p)
			continue
		}
		if IsNotFound(err) {
			c.log.Warn("invite: person not found in Slack, skipped", "entry", p, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		add(ids...)
	}
	return out, nil
}

// Bookmark adds an http(s) link to the channel's bookmark bar.
func (c *Chat) Bookmark(ctx context.Context, channelID string, link incidents.Link) error {
	if SafeURL(link.URL) == "" {
		return outbox.Permanent(fmt.Errorf("bookmark %q in %s: not an http(s) URL", link.URL, channelID))
	}
	_, err := c.api.AddBookmarkContext(ctx, channelID, slack.AddBookmarkParameters{
		Title: PlainLimit(orDefault(link.Text, link.URL), MaxBookmarkTitle), Type: "link", Link: strings.TrimSpace(link.URL),
	})
	return classify("bookmark "+channelID, err)
}

// PostSummary posts and pins the summary, or updates it when updateTS is set.
// A failed pin is logged, not returned: the summary is posted, and a retry
// would post it twice.
func (c *Chat) PostSummary(ctx context.Context, channelID, updateTS string, v *incidents.SummaryView) (string, error) {
	blocks, text := RenderSummary(v)
	ts, err := c.send(ctx, channelID, "", updateTS, blocks, text)
	if err != nil || updateTS != "" {
		return ts, err
	}
	if err := c.api.AddPinContext(ctx, channelID, slack.ItemRef{Timestamp: ts}); err != nil && slackErrorCode(err) != "already_pinned" {
		c.log.Warn("pin incident summary", "channel", channelID, "ts", ts, "err", err)
	}
	return ts, nil
}

// Post posts a notice, or updates m.UpdateTS. m.Channel may be a name.
func (c *Chat) Post(ctx context.Context, m incidents.Message) (string, error) {
	channelID, err := c.channelID(ctx, m.Channel)
	if err != nil {
		return "", err
	}
	blocks, text := RenderMessage(m)
	return c.send(ctx, channelID, m.ThreadTS, m.UpdateTS, blocks, text)
}

// PostChecklistItem posts an item in the checklist thread, or updates it.
func (c *Chat) PostChecklistItem(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.ChecklistItemView) (string, error) {
	blocks, text := RenderChecklistItem(v)
	return c.send(ctx, channelID, threadTS, updateTS, blocks, text)
}

// PostPostmortemQuestion posts a question in the postmortem thread, or updates it.
func (c *Chat) PostPostmortemQuestion(ctx context.Context, channelID, threadTS, updateTS string, v *incidents.PostmortemQuestionView) (string, error) {
	blocks, text := RenderPostmortemQuestion(v)
	return c.send(ctx, channelID, threadTS, updateTS, blocks, text)
}

// send posts blocks (in a thread when threadTS is set) or updates updateTS.
func (c *Chat) send(ctx context.Context, channelID, threadTS, updateTS string, blocks []slack.Block, text string) (string, error) {
	opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(Truncate(text, MaxMessageText), false)}
	if updateTS != "" {
		_, ts, _, err := c.api.UpdateMessageContext(ctx, channelID, updateTS, opts...)
		if err != nil {
			return "", classify(fmt.Sprintf("update message %s in %s", updateTS, channelID), err)
		}
		return orDefault(ts, updateTS), nil
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err := c.api.PostMessageContext(ctx, channelID, opts...)
	if err != nil {
		return "", classify("post message in "+channelID, err)
	}
	return ts, nil
}

// UploadFile shares a text file (the postmortem) in the channel or thread.
func (c *Chat) UploadFile(ctx context.Context, channelID, threadTS, filename, title, content string) error {
	if content == "" {
		return outbox.Permanent(fmt.Errorf("upload %s to %s: the file is empty", filename, channelID))
	}
	_, err := c.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Channel: channelID, ThreadTimestamp: threadTS, Filename: filename,
		Title: PlainLimit(title, 250), Content: content, FileSize: len(content),
	})
	return classify(fmt.Sprintf("upload %s to %s", filename, channelID), err)
}

// PostEphemeral shows blocks to one user in a channel.
func (c *Chat) PostEphemeral(ctx context.Context, channelID, userID string, blocks []slack.Block, text string) error {
	_, err := c.api.PostEphemeralContext(ctx, channelID, userID,
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(Truncate(text, MaxMessageText), false))
	return classify(fmt.Sprintf("post ephemeral to %s in %s", userID, channelID), err)
}

// OpenView opens a modal; triggerID comes from the interaction (valid 3 s, once).
func (c *Chat) OpenView(ctx context.Context, triggerID string, v slack.ModalViewRequest) error {
	_, err := c.api.OpenViewContext(ctx, triggerID, v)
	return classify("open view "+v.CallbackID, err)
}

// Respond answers through an interaction's or command's response_url:
// ephemeral to the caller or in the channel, replacing the original message
// or not. Slack accepts 5 responses per URL within 30 minutes.
func (c *Chat) Respond(ctx context.Context, responseURL string, blocks []slack.Block, text string, ephemeral, replaceOriginal bool) error {
	msg := &slack.WebhookMessage{Text: Truncate(text, MaxMessageText), ResponseType: slack.ResponseTypeInChannel,
		ReplaceOriginal: replaceOriginal}
	if ephemeral {
		msg.ResponseType = slack.ResponseTypeEphemeral
	}
	if len(blocks) > 0 {
		msg.Blocks = &slack.Blocks{BlockSet: blocks}
	}
	return classify("respond", redactURL(slack.PostWebhookCustomHTTPContext(ctx, responseURL, c.http, msg)))
}

// channelID resolves a channel name ("#name" or "name") to its ID through
// conversations.list, cached; IDs pass through.
func (c *Chat) channelID(ctx context.Context, ref string) (string, error) {
	if channelIDPattern.MatchString(ref) {
		return ref, nil
	}
	name := strings.TrimPrefix(strings.TrimSpace(ref), "#")
	c.mu.Lock()
	id, ok := c.channels[name]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	params := &slack.GetConversationsParameters{Limit: 1000, ExcludeArchived: true,
		Types: []string{"public_channel", "private_channel"}}
	for {
		page, next, err := c.api.GetConversationsContext(ctx, params)
		if err != nil {
			return "", classify("find channel #"+name, err)
		}
		for _, ch := range page {
			c.remember(ch.Name, ch.ID)
			if ch.Name == name {
				id = ch.ID
			}
		}
		if id != "" {
			return id, nil
		}
		if next == "" {
			return "", outbox.Permanent(fmt.Errorf("find channel #%s: channel_not_found (create it, or invite the reins app to it)", name))
		}
		params.Cursor = next
	}
}

func (c *Chat) remember(name, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.channels[name] = id
}
