package bot

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents/outbox"
)

// errNoOK is the Slack error code reins gives a Web API reply that lacks
// "ok": true and names no error: slack-go counts `{}` as success, and a
// channel, message or pin that was never made would be recorded as done.
const errNoOK = "reply_without_ok"

// slackAuthErrors are the Web API errors that mean the token itself is refused.
var slackAuthErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "token_revoked": true,
	"token_expired": true, "account_inactive": true,
}

// NewClient returns a slack-go client for the Web API at apiURL (ending in
// "/") that treats every reply without "ok": true as a failure. Use it for
// every client that posts or creates. authFailed, when not nil, is called
// each time Slack refuses the token (cmd/reins counts it in
// reins_integration_auth_failures_total{system="slack"}).
func NewClient(token, apiURL string, authFailed func(), opts ...slack.Option) *slack.Client {
	if authFailed == nil {
		authFailed = func() {}
	}
	doer := &okRequired{base: apiURL, next: &http.Client{Timeout: 30 * time.Second}, authFailed: authFailed}
	return slack.New(token, append([]slack.Option{slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(doer)}, opts...)...)
}

// okRequired rewrites a 200 JSON reply from the Web API that does not say
// "ok": true (`{}`, `{"ok":false}` without an error) into
// {"ok":false,"error":"reply_without_ok"}, which slack-go returns as an error.
// Uploads to files' upload URLs (not under the API base, not JSON) pass.
type okRequired struct {
	base string
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	authFailed func()
}

func (o *okRequired) Do(req *http.Request) (*http.Response, error) {
	resp, err := o.next.Do(req)
	if err == nil && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		// Slack answered: a delivery waiting out a Slack outage may resume.
		outbox.Answered(req.Context())
	}
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(req.URL.String(), o.base) {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var reply struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	decoded := json.Unmarshal(body, &reply) == nil
	if decoded && slackAuthErrors[reply.Error] {
		o.authFailed()
	}
	if decoded && (reply.OK == nil || (!*reply.OK && reply.Error == "")) {
		body = []byte(`{"ok":false,"error":"` + errNoOK + `"}`)
		resp.Header.Set("Content-Type", "application/json")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}
