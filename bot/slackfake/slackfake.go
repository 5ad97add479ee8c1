// Package slackfake is an httptest fake of the Slack Web API. It records every
// call, keeps the state Slack would (channels, members, messages, pins, files,
// views) and answers like Slack, including the errors reins must handle:
// name_taken, already_in_channel, users_not_found, rate limits with
// Retry-After, and whole outages (Outage: every call a 5xx or a 429). Point slack-go at it with slack.OptionAPIURL(srv.APIURL()).
//
// slack-go's own slacktest covers fewer methods and cannot answer errors, which
// is why reins has its own.
package slackfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Identities of the fake workspace.
const (
	BotUserID = "UBOT"
	BotID     = "BBOT"
	TeamID    = "T0FAKE"
)

// Call is one recorded request.
type Call struct {
	Method string
	// Params holds the form and query values; for JSON bodies, the top-level
	// fields (strings as they are, anything else as JSON text).
	Params url.Values
	JSON   json.RawMessage // the raw body when it was JSON
	// Error is the Slack error answered ("" when ok), or "ratelimited".
	Error string
	At    time.Time
}

// Message is a message as the channel holds it now (updates applied).
type Message struct {
	Channel  string // channel ID
	TS       string
	ThreadTS string
	Text     string
	Blocks   json.RawMessage // "" when none
	User     string          // ephemeral messages: the one user who sees it
	Updates  int
	Pinned   bool
}

// Channel is a conversation of the fake workspace.
type Channel struct {
	ID        string
	Name      string
	Private   bool
	Archived  bool
	Topic     string
	Members   []string
	Bookmarks []Bookmark
	Creator   string // the bot for channels it created, AdminUserID for AddChannel's
}

// AdminUserID is the workspace admin who created the channels AddChannel adds.
const AdminUserID = "U0ADMIN"

// Bookmark is a channel bookmark.
type Bookmark struct {
	ID, Title, Type, Link string
}

// File is an uploaded file, shared when completed.
type File struct {
	ID       string
	Name     string
	Title    string
	Content  string
	Channel  string
	ThreadTS string
	Shared   bool
}

// Response is one POST received on a response URL.
type Response struct {
	Path            string
	Body            json.RawMessage
	Text            string
	ResponseType    string
	ReplaceOriginal bool
	Blocks          json.RawMessage
	At              time.Time // when it arrived
}

type user struct{ id, email, realName string }

type fault struct {
	times      int
	slackError string // "" for a rate limit
	empty      bool   // answer {} with no "ok"
	retryAfter int
}

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu             sync.Mutex
	calls          []Call
	faults         map[string][]*fault
	outage         *outage
	channels       []*Channel
	messages       []*Message
	ephemerals     []*Message
	users          []user
	groups         map[string][]string
	files          map[string]*File
	fileOrder      []string
	responses      []Response
	views          int
	seq            int
	usersInfoCalls int
	socketURL      string
}

// New starts a fake with the bot user in an empty workspace. Close it when done.
func New() *Server {
	s := &Server{
		faults: map[string][]*fault{},
		groups: map[string][]string{},
		files:  map[string]*File{},
	}
	s.users = append(s.users, user{id: BotUserID, email: "reins-bot@example.invalid"})
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.socketURL = "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket"
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the base URL of the server.
func (s *Server) URL() string { return s.srv.URL }

// APIURL is the Web API base, for slack.OptionAPIURL and SLACK_API_URL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Client returns a slack-go client talking to the fake.
func (s *Server) Client(opts ...slack.Option) *slack.Client {
	opts = append([]slack.Option{slack.OptionAPIURL(s.APIURL())}, opts...)
	return slack.New("xoxb-fake", opts...)
}

// SetSocketURL sets the URL apps.connections.open answers (a Socket Mode fake).
func (s *Server) SetSocketURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.socketURL = u
}

// RateLimit makes the next times calls of method answer HTTP 429 with
// Retry-After: retryAfter and {"ok":false,"error":"ratelimited"}.
func (s *Server) RateLimit(method string, times, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{times: times, retryAfter: retryAfter})
}

// Fail makes the next times calls of method answer {"ok":false,"error":slackError}.
func (s *Server) Fail(method, slackError string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{times: times, slackError: slackError})
}

// AnswerEmpty makes the next times calls of method answer `{}` with HTTP 200
// and do nothing: a reply without "ok": true, which is not a success.
func (s *Server) AnswerEmpty(method string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = append(s.faults[method], &fault{times: times, empty: true})
}

// AddUser adds a workspace user.
func (s *Server) AddUser(id, email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, user{id: id, email: email})
}

// SetRealName gives a user the full name users.info answers with.
func (s *Server) SetRealName(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.users {
		if s.users[i].id == id {
			s.users[i].realName = name
		}
	}
}

// UsersInfoCalls counts the users.info calls answered, to check caching.
func (s *Server) UsersInfoCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usersInfoCalls
}

// AddUsergroup adds a user group with its members.
func (s *Server) AddUsergroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// AddChannel adds a public channel with the bot and members in it.
func (s *Server) AddChannel(id, name string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels = append(s.channels, &Channel{ID: id, Name: name, Members: append([]string{BotUserID}, members...), Creator: AdminUserID})
}

// ArchiveChannel archives a channel; posting to it then fails with is_archived.
func (s *Server) ArchiveChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channelLocked(id); c != nil {
		c.Archived = true
	}
}

// Calls returns the recorded calls of method, or of every method when "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the messages of a channel (ID or name), oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(s.messages, channel)
}

// Ephemerals returns the ephemeral messages posted in a channel (ID or name).
func (s *Server) Ephemerals(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(s.ephemerals, channel)
}

func (s *Server) messagesLocked(list []*Message, channel string) []Message {
	id := channel
	if c := s.channelLocked(channel); c != nil {
		id = c.ID
	}
	var out []Message
	for _, m := range list {
		if m.Channel == id {
			out = append(out, *m)
		}
	}
	return out
}

// Channels returns every channel, in creation order.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, 0, len(s.channels))
	for _, c := range s.channels {
		cp := *c
		cp.Members = slices.Clone(c.Members)
		cp.Bookmarks = slices.Clone(c.Bookmarks)
		out = append(out, cp)
	}
	return out
}

// Members returns the members of a channel (ID or name), nil if unknown.
func (s *Server) Members(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.channelLocked(channel); c != nil {
		return slices.Clone(c.Members)
	}
	return nil
}

// Files returns the uploaded files, in upload order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, 0, len(s.fileOrder))
	for _, id := range s.fileOrder {
		out = append(out, *s.files[id])
	}
	return out
}

// ResponseURL returns a fresh response URL whose POSTs are recorded.
func (s *Server) ResponseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%s/response/%d", s.srv.URL, s.seq)
}

// Responses returns what was POSTed to response URLs, in order.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.responses)
}

// channelLocked finds a channel by ID, name or #name.
func (s *Server) channelLocked(ref string) *Channel {
	name := strings.TrimPrefix(ref, "#")
	for _, c := range s.channels {
		if c.ID == ref || c.Name == name {
			return c
		}
	}
	return nil
}

func (s *Server) userLocked(id string) *user {
	for i := range s.users {
		if s.users[i].id == id {
			return &s.users[i]
		}
	}
	return nil
}

// nextTS returns a message timestamp, unique and increasing.
func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("1700000000.%06d", s.seq)
}

// takeFault consumes the next programmed fault of method, if any.
func (s *Server) takeFault(method string) *fault {
	list := s.faults[method]
	if len(list) == 0 {
		return nil
	}
	f := list[0]
	f.times--
	if f.times <= 0 {
		s.faults[method] = list[1:]
	}
	return f
}

// ClearFaults forgets every programmed rate limit and failure.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// ButtonValue returns the value of the button with actionID in rendered
// blocks (or a whole message or view), "" when there is none.
func ButtonValue(blocks json.RawMessage, actionID string) string {
	var found string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["action_id"] == actionID {
				if s, ok := v["value"].(string); ok && found == "" {
					found = s
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var tree any
	if json.Unmarshal(blocks, &tree) == nil {
		walk(tree)
	}
	return found
}
