package slackfake

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// obj is a JSON object answered to the client.
type obj = map[string]any

// handler answers one Web API method with s.mu held: the fields of an ok
// answer, or a Slack error code.
type handler func(s *Server, p url.Values) (obj, string)

var handlers = map[string]handler{
	"auth.test":                    (*Server).authTest,
	"apps.connections.open":        (*Server).connectionsOpen,
	"conversations.create":         (*Server).conversationsCreate,
	"conversations.setTopic":       (*Server).conversationsSetTopic,
	"conversations.invite":         (*Server).conversationsInvite,
	"conversations.list":           (*Server).conversationsList,
	"conversations.info":           (*Server).conversationsInfo,
	"chat.postMessage":             (*Server).chatPostMessage,
	"chat.update":                  (*Server).chatUpdate,
	"chat.postEphemeral":           (*Server).chatPostEphemeral,
	"pins.add":                     (*Server).pinsAdd,
	"bookmarks.add":                (*Server).bookmarksAdd,
	"users.lookupByEmail":          (*Server).usersLookupByEmail,
	"users.info":                   (*Server).usersInfo,
	"usergroups.users.list":        (*Server).usergroupsUsersList,
	"usergroups.list":              (*Server).usergroupsList,
	"files.getUploadURLExternal":   (*Server).filesGetUploadURL,
	"files.completeUploadExternal": (*Server).filesCompleteUpload,
	"views.open":                   (*Server).viewsOpen,
	"views.update":                 (*Server).viewsUpdate,
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.serveAPI(w, r, strings.TrimPrefix(r.URL.Path, "/api/"))
	case strings.HasPrefix(r.URL.Path, "/upload/"):
		s.serveUpload(w, r, strings.TrimPrefix(r.URL.Path, "/upload/"))
	case strings.HasPrefix(r.URL.Path, "/response/"):
		s.serveResponse(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, method string) {
	params, raw, err := readParams(r)
	if err != nil {
		writeJSON(w, http.StatusOK, obj{"ok": false, "error": "invalid_form_data"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Method: method, Params: params, JSON: raw, At: time.Now()}
	h, known := handlers[method]
	if !known {
		call.Error = "unknown_method"
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusNotFound, obj{"ok": false, "error": "unknown_method"})
		return
	}
	if f, out := s.takeOutage(call.At); out {
		answerOutage(w, f, &call)
		s.calls = append(s.calls, call)
		return
	}
	if f := s.takeFault(method); f != nil {
		if f.empty {
			call.Error = "{}"
			s.calls = append(s.calls, call)
			writeJSON(w, http.StatusOK, obj{})
			return
		}
		if f.slackError == "" {
			call.Error = "ratelimited"
			s.calls = append(s.calls, call)
			w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
			writeJSON(w, http.StatusTooManyRequests, obj{"ok": false, "error": "ratelimited"})
			return
		}
		call.Error = f.slackError
		s.calls = append(s.calls, call)
		writeJSON(w, http.StatusOK, obj{"ok": false, "error": f.slackError})
		return
	}
	answer, slackErr := h(s, params)
	call.Error = slackErr
	s.calls = append(s.calls, call)
	if slackErr != "" {
		writeJSON(w, http.StatusOK, obj{"ok": false, "error": slackErr})
		return
	}
	if answer == nil {
		answer = obj{}
	}
	answer["ok"] = true
	writeJSON(w, http.StatusOK, answer)
}

// readParams merges query, form and top-level JSON fields.
func readParams(r *http.Request) (url.Values, json.RawMessage, error) {
	params := url.Values{}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return nil, nil, err
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "application/json":
		if len(bytes.TrimSpace(body)) == 0 {
			return params, nil, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, nil, err
		}
		for k, v := range fields {
			var str string
			if json.Unmarshal(v, &str) == nil {
				params.Set(k, str)
			} else {
				params.Set(k, string(v))
			}
		}
		return params, json.RawMessage(body), nil
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, nil, err
		}
		for k, v := range form {
			params[k] = v
		}
		return params, nil, nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveUpload takes the file body slack-go posts to the upload URL.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, id string) {
	var content []byte
	if file, _, err := r.FormFile("file"); err == nil {
		content, err = io.ReadAll(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		http.Error(w, "no file part", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[id]
	if !ok {
		http.NotFound(w, r)
		return
	}
	f.Content = string(content)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("OK - " + strconv.Itoa(len(content))))
}

// serveResponse records a POST to a response URL, as Slack's hooks do.
func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg struct {
		Text            string          `json:"text"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		Blocks          json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.responses = append(s.responses, Response{
		Path: r.URL.Path, Body: body, Text: msg.Text, ResponseType: msg.ResponseType,
		ReplaceOriginal: msg.ReplaceOriginal, Blocks: msg.Blocks, At: time.Now(),
	})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	_, _ = w.Write([]byte("ok"))
}
