package slackfake

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

var validChannelName = regexp.MustCompile(`^[a-z0-9_-]+$`)

func (s *Server) authTest(url.Values) (obj, string) {
	return obj{"url": "https://fake.slack.com/", "team": "Fake", "user": "reins",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID}, ""
}

func (s *Server) connectionsOpen(url.Values) (obj, string) {
	return obj{"url": s.socketURL}, ""
}

func channelJSON(c *Channel) obj {
	return obj{
		"id": c.ID, "name": c.Name, "is_channel": !c.Private, "is_group": c.Private,
		"is_private": c.Private, "is_archived": c.Archived, "is_member": slices.Contains(c.Members, BotUserID),
		"num_members": len(c.Members), "creator": c.Creator,
		"topic": obj{"value": c.Topic},
	}
}

func (s *Server) conversationsCreate(p url.Values) (obj, string) {
	name := p.Get("name")
	switch {
	case name == "":
		return nil, "invalid_name_required"
	case utf8.RuneCountInString(name) > 80:
		return nil, "invalid_name_maxlength"
	case !validChannelName.MatchString(name):
		return nil, "invalid_name_specials"
	case s.channelLocked(name) != nil:
		return nil, "name_taken"
	}
	s.seq++
	c := &Channel{ID: fmt.Sprintf("C0F%06d", s.seq), Name: name, Private: p.Get("is_private") == "true",
		Members: []string{BotUserID}, Creator: BotUserID}
	s.channels = append(s.channels, c)
	return obj{"channel": channelJSON(c)}, ""
}

// writable finds a channel the bot may act in.
func (s *Server) writable(ref string) (*Channel, string) {
	c := s.channelLocked(ref)
	switch {
	case ref == "":
		return nil, "channel_not_found"
	case c == nil:
		return nil, "channel_not_found"
	case c.Archived:
		return nil, "is_archived"
	case !slices.Contains(c.Members, BotUserID):
		return nil, "not_in_channel"
	}
	return c, ""
}

func (s *Server) conversationsSetTopic(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	if utf8.RuneCountInString(p.Get("topic")) > 250 {
		return nil, "too_long"
	}
	c.Topic = p.Get("topic")
	return obj{"channel": channelJSON(c)}, ""
}

// conversationsInvite invites everyone or, like Slack without force, nobody
// when one of the users cannot be invited.
func (s *Server) conversationsInvite(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	ids := strings.Split(p.Get("users"), ",")
	if p.Get("users") == "" {
		return nil, "no_user"
	}
	if len(ids) > 1000 {
		return nil, "too_many_users"
	}
	for _, id := range ids {
		switch {
		case id == BotUserID:
			return nil, "cant_invite_self"
		case s.userLocked(id) == nil:
			return nil, "user_not_found"
		case slices.Contains(c.Members, id):
			return nil, "already_in_channel"
		}
	}
	c.Members = append(c.Members, ids...)
	return obj{"channel": channelJSON(c)}, ""
}

func (s *Server) conversationsList(p url.Values) (obj, string) {
	types := p.Get("types")
	if types == "" {
		types = "public_channel"
	}
	var all []*Channel
	for _, c := range s.channels {
		kind := "public_channel"
		if c.Private {
			kind = "private_channel"
		}
		if !strings.Contains(types, kind) || (c.Archived && p.Get("exclude_archived") == "true") {
			continue
		}
		all = append(all, c)
	}
	limit, _ := strconv.Atoi(p.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	start, _ := strconv.Atoi(p.Get("cursor"))
	if start < 0 || start > len(all) {
		return nil, "invalid_cursor"
	}
	end := min(start+limit, len(all))
	page := []obj{}
	for _, c := range all[start:end] {
		page = append(page, channelJSON(c))
	}
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	return obj{"channels": page, "response_metadata": obj{"next_cursor": next}}, ""
}

func (s *Server) conversationsInfo(p url.Values) (obj, string) {
	c := s.channelLocked(p.Get("channel"))
	if c == nil || c.ID != p.Get("channel") {
		return nil, "channel_not_found"
	}
	return obj{"channel": channelJSON(c)}, ""
}

// messageContent reads and checks text and blocks as chat.postMessage does.
func messageContent(p url.Values) (string, json.RawMessage, string) {
	text, raw := p.Get("text"), p.Get("blocks")
	if raw == "" {
		if text == "" {
			return "", nil, "no_text"
		}
		return text, nil, ""
	}
	if e := checkBlocks([]byte(raw)); e != "" {
		return "", nil, e
	}
	return text, json.RawMessage(raw), ""
}

func (s *Server) chatPostMessage(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	text, blocks, e := messageContent(p)
	if e != "" {
		return nil, e
	}
	m := &Message{Channel: c.ID, TS: s.nextTS(), ThreadTS: p.Get("thread_ts"), Text: text, Blocks: blocks}
	s.messages = append(s.messages, m)
	return obj{"channel": c.ID, "ts": m.TS, "message": obj{
		"type": "message", "user": BotUserID, "bot_id": BotID, "text": text, "ts": m.TS, "thread_ts": m.ThreadTS,
	}}, ""
}

func (s *Server) findMessage(channelID, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channelID && m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) chatUpdate(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	if c.ID != p.Get("channel") {
		return nil, "channel_not_found" // chat.update takes IDs only
	}
	m := s.findMessage(c.ID, p.Get("ts"))
	if m == nil {
		return nil, "message_not_found"
	}
	text, blocks, e := messageContent(p)
	if e != "" {
		return nil, e
	}
	m.Text, m.Blocks = text, blocks
	m.Updates++
	return obj{"channel": c.ID, "ts": m.TS, "text": text}, ""
}

func (s *Server) chatPostEphemeral(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	if !slices.Contains(c.Members, p.Get("user")) {
		return nil, "user_not_in_channel"
	}
	text, blocks, e := messageContent(p)
	if e != "" {
		return nil, e
	}
	m := &Message{Channel: c.ID, TS: s.nextTS(), ThreadTS: p.Get("thread_ts"), Text: text, Blocks: blocks, User: p.Get("user")}
	s.ephemerals = append(s.ephemerals, m)
	return obj{"message_ts": m.TS}, ""
}

func (s *Server) pinsAdd(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel"))
	if e != "" {
		return nil, e
	}
	m := s.findMessage(c.ID, p.Get("timestamp"))
	switch {
	case m == nil:
		return nil, "message_not_found"
	case m.Pinned:
		return nil, "already_pinned"
	}
	m.Pinned = true
	return nil, ""
}

func (s *Server) bookmarksAdd(p url.Values) (obj, string) {
	c, e := s.writable(p.Get("channel_id"))
	if e != "" {
		return nil, e
	}
	switch {
	case p.Get("title") == "":
		return nil, "invalid_title"
	case p.Get("type") != "link":
		return nil, "invalid_type"
	case !strings.HasPrefix(p.Get("link"), "http://") && !strings.HasPrefix(p.Get("link"), "https://"):
		return nil, "invalid_link"
	}
	s.seq++
	b := Bookmark{ID: fmt.Sprintf("Bk%06d", s.seq), Title: p.Get("title"), Type: "link", Link: p.Get("link")}
	c.Bookmarks = append(c.Bookmarks, b)
	return obj{"bookmark": obj{"id": b.ID, "channel_id": c.ID, "title": b.Title, "type": b.Type, "link": b.Link}}, ""
}

func userJSON(u *user) obj {
	return obj{"id": u.id, "team_id": TeamID, "name": strings.Split(u.email, "@")[0], "real_name": u.realName,
		"profile": obj{"email": u.email, "real_name": u.realName, "display_name": u.realName}}
}

func (s *Server) usersLookupByEmail(p url.Values) (obj, string) {
	for i := range s.users {
		if strings.EqualFold(s.users[i].email, p.Get("email")) {
			return obj{"user": userJSON(&s.users[i])}, ""
		}
	}
	return nil, "users_not_found"
}

func (s *Server) usersInfo(p url.Values) (obj, string) {
	s.usersInfoCalls++
	if u := s.userLocked(p.Get("user")); u != nil {
		return obj{"user": userJSON(u)}, ""
	}
	return nil, "user_not_found"
}

func (s *Server) usergroupsUsersList(p url.Values) (obj, string) {
	members, ok := s.groups[p.Get("usergroup")]
	if !ok {
		return nil, "no_such_subteam"
	}
	return obj{"users": append([]string{}, members...)}, ""
}

func (s *Server) usergroupsList(p url.Values) (obj, string) {
	ids := make([]string, 0, len(s.groups))
	for id := range s.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	list := []obj{}
	for _, id := range ids {
		g := obj{"id": id, "team_id": TeamID, "handle": strings.ToLower(id), "name": id, "user_count": len(s.groups[id])}
		if p.Get("include_users") == "true" {
			g["users"] = s.groups[id]
		}
		list = append(list, g)
	}
	return obj{"usergroups": list}, ""
}

func (s *Server) filesGetUploadURL(p url.Values) (obj, string) {
	if p.Get("filename") == "" || p.Get("length") == "" || p.Get("length") == "0" {
		return nil, "invalid_arguments"
	}
	s.seq++
	id := fmt.Sprintf("F0F%06d", s.seq)
	s.files[id] = &File{ID: id, Name: p.Get("filename")}
	s.fileOrder = append(s.fileOrder, id)
	return obj{"upload_url": s.srv.URL + "/upload/" + id, "file_id": id}, ""
}

func (s *Server) filesCompleteUpload(p url.Values) (obj, string) {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p.Get("files")), &files); err != nil || len(files) == 0 {
		return nil, "invalid_arguments"
	}
	var channel *Channel
	if ref := p.Get("channel_id"); ref != "" {
		c, e := s.writable(ref)
		if e != "" {
			return nil, e
		}
		channel = c
	}
	out := []obj{}
	for _, in := range files {
		f, ok := s.files[in.ID]
		if !ok || f.Content == "" {
			return nil, "file_not_found"
		}
		f.Title = in.Title
		if channel != nil {
			f.Channel, f.ThreadTS, f.Shared = channel.ID, p.Get("thread_ts"), true
		}
		out = append(out, obj{"id": f.ID, "title": f.Title})
	}
	return obj{"files": out}, ""
}

func (s *Server) viewAnswer(raw string) (obj, string) {
	var view map[string]any
	if err := json.Unmarshal([]byte(raw), &view); err != nil {
		return nil, "invalid_arguments"
	}
	if e := checkView(view); e != "" {
		return nil, e
	}
	s.views++
	view["id"] = fmt.Sprintf("V0F%06d", s.views)
	view["team_id"] = TeamID
	return obj{"view": view}, ""
}

func (s *Server) viewsOpen(p url.Values) (obj, string) {
	if p.Get("trigger_id") == "" {
		return nil, "invalid_trigger_id"
	}
	return s.viewAnswer(p.Get("view"))
}

func (s *Server) viewsUpdate(p url.Values) (obj, string) {
	if p.Get("view_id") == "" && p.Get("external_id") == "" {
		return nil, "not_found"
	}
	return s.viewAnswer(p.Get("view"))
}
