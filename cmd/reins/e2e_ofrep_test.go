package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
)

// sdkStop is the default the agent's code gives the SDK: whatever goes wrong
// (reins unreachable, unknown agent, bad request), the agent stops.
const sdkStop = "stop"

// ofrepEnv is reins with a flag token, and an OpenFeature client on the
// OFREP provider of go-sdk-contrib pointed at it.
func ofrepEnv(t *testing.T, pg bool) (*testEnv, *openfeature.Client) {
	t.Helper()
	e := startTestMain(t, testOptions{Postgres: pg, Env: map[string]string{"REINS_FLAG_TOKEN": flagToken}})
	domain := "reins-" + t.Name()
	if err := openfeature.SetNamedProviderAndWait(domain, ofrep.NewProvider(e.URL, ofrep.WithBearerToken(flagToken))); err != nil {
		t.Fatal(err)
	}
	return e, openfeature.NewClient(domain)
}

// readWithin evaluates the agent's flag (for session, "" for the agent as a
// whole) until it says mode, at most a second after the change.
func readWithin(t *testing.T, c *openfeature.Client, agent, session, mode string, changed time.Time) openfeature.StringEvaluationDetails {
	t.Helper()
	ec := openfeature.NewTargetlessEvaluationContext(nil)
	if session != "" {
		ec = openfeature.NewEvaluationContext(session, nil)
	}
	for {
		d, err := c.StringValueDetails(context.Background(), agent, sdkStop, ec)
		if err == nil && d.Value == mode {
			if took := time.Since(changed); took > time.Second {
				t.Errorf("%s session %q read %s %v after the change, want within 1 s", agent, session, mode, took)
			}
			return d
		}
		if time.Since(changed) > 2*time.Second {
			t.Fatalf("%s session %q: got %q (err %v), want %s within 1 s", agent, session, d.Value, err, mode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// change calls the API (halt, restrict, throttle, resume) and returns when it
// was asked; it fails the test unless reins verified it.
func change(t *testing.T, e *testEnv, action string, body map[string]any) time.Time {
	t.Helper()
	at := time.Now()
	body["actor"] = "ofrep-test"
	if _, ok := body["reason"]; !ok && action != "resume" {
		body["reason"] = "ofrep acceptance"
	}
	status, out := e.api(http.MethodPost, "/agents/support-bot/"+action, body)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", action, status, out)
	}
	return at
}

// Issue 27, acceptance 2 (Go): the OpenFeature Go SDK with the OFREP
// provider reads halted, restricted (with its allow-list) and running for
// an agent and for a session within a second of each change; an unknown
// agent is an error and the SDK's default, stop.
func TestOFREPGoSDK(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			e, c := ofrepEnv(t, db == "postgres")
			readWithin(t, c, "support-bot", "s-1", "running", time.Now())

			at := change(t, e, "halt", map[string]any{"sessions": []string{"s-1"}})
			d := readWithin(t, c, "support-bot", "s-1", "halted", at)
			if h, _ := d.FlagMetadata.GetBool("halted"); !h || d.Variant != "halted" {
				t.Errorf("halted session: metadata %v variant %q", d.FlagMetadata, d.Variant)
			}
			readWithin(t, c, "support-bot", "s-2", "running", at)
			readWithin(t, c, "support-bot", "", "running", at)

			at = change(t, e, "restrict", map[string]any{"sessions": []string{"s-2"}, "allow": []string{"salesforce.read", "zendesk.*"}})
			d = readWithin(t, c, "support-bot", "s-2", "restricted", at)
			if allow, _ := d.FlagMetadata.GetString("allow"); allow != "salesforce.read,zendesk.*" {
				t.Errorf("restricted session: allow %q, want salesforce.read,zendesk.*", allow)
			}

			at = change(t, e, "restrict", map[string]any{"allow": []string{"kb.read"}})
			d = readWithin(t, c, "support-bot", "", "restricted", at)
			if allow, _ := d.FlagMetadata.GetString("allow"); allow != "kb.read" {
				t.Errorf("restricted agent: allow %q, want kb.read", allow)
			}
			readWithin(t, c, "support-bot", "s-9", "restricted", at) // the agent's rung covers every session
			readWithin(t, c, "support-bot-v2", "s-1", "halted", at)  // the alias; the session's own halt is stronger

			at = change(t, e, "halt", map[string]any{})
			readWithin(t, c, "support-bot", "", "halted", at)
			readWithin(t, c, "support-bot", "s-2", "halted", at)

			at = change(t, e, "resume", map[string]any{})
			readWithin(t, c, "support-bot", "", "running", at)
			readWithin(t, c, "support-bot", "s-1", "running", at)
			readWithin(t, c, "support-bot", "s-2", "running", at)

			for _, key := range []string{"ghost-bot", "support-bot/x"} {
				d, err := c.StringValueDetails(context.Background(), key, sdkStop, openfeature.NewEvaluationContext("s-1", nil))
				if err == nil || d.Value != sdkStop || d.ErrorCode != openfeature.FlagNotFoundCode {
					t.Errorf("unknown agent %q: value %q err %v code %q, want the default %q and FLAG_NOT_FOUND", key, d.Value, err, d.ErrorCode, sdkStop)
				}
			}
		})
	}
}

// OFREP errors as the protocol defines them: 401 without the token, 404
// FLAG_NOT_FOUND, 400 PARSE_ERROR and INVALID_CONTEXT; never a value.
func TestOFREPErrors(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_FLAG_TOKEN": flagToken}})
	auth := http.Header{"Authorization": {"Bearer " + flagToken}, "Content-Type": {"application/json"}}
	tests := []struct {
		name   string
		path   string
		header http.Header
		body   string
		status int
		code   string
	}{
		{"ErrNoToken", "/ofrep/v1/evaluate/flags/support-bot", http.Header{}, `{}`, 401, ""},
		{"ErrWrongToken", "/ofrep/v1/evaluate/flags/support-bot", http.Header{"Authorization": {"Bearer x"}}, `{}`, 401, ""},
		{"ErrUnknownAgent", "/ofrep/v1/evaluate/flags/ghost", auth, `{"context":{"targetingKey":"s-1"}}`, 404, "FLAG_NOT_FOUND"},
		{"ErrParse", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":`, 400, "PARSE_ERROR"},
		{"ErrContextNotObject", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":[1]}`, 400, "INVALID_CONTEXT"},
		{"ErrTargetingKeyNotString", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":7}}`, 400, "INVALID_CONTEXT"},
		{"ErrTargetingKeyNUL", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":"a\u0000b"}}`, 400, "INVALID_CONTEXT"},
		// A session ID reins could never have contained is an error, as the
		// kill flag's ?session= answers it, not "running".
		{"ErrTargetingKeyControl", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":"s-1\nx"}}`, 400, "INVALID_CONTEXT"},
		{"ErrTargetingKeyTooLong", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":"` + strings.Repeat("s", 257) + `"}}`, 400, "INVALID_CONTEXT"},
		{"ErrTargetingKeyNotUTF8", "/ofrep/v1/evaluate/flags/support-bot", auth, "{\"context\":{\"targetingKey\":\"s-\xff\"}}", 400, "INVALID_CONTEXT"},
		{"ErrBulkTargetingKeyControl", "/ofrep/v1/evaluate/flags", auth, `{"context":{"targetingKey":"s-1\tx"}}`, 400, "INVALID_CONTEXT"},
		{"OKTargetingKeyLongest", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":"` + strings.Repeat("s", 256) + `"}}`, 200, ""},
		{"OKTargetingKeyEmpty", "/ofrep/v1/evaluate/flags/support-bot", auth, `{"context":{"targetingKey":""}}`, 200, ""},
		{"ErrBulkParse", "/ofrep/v1/evaluate/flags", auth, `nope`, 400, "PARSE_ERROR"},
		{"OKEmptyBody", "/ofrep/v1/evaluate/flags/support-bot", auth, ``, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do(http.MethodPost, tt.path, tt.header, []byte(tt.body))
			if status != tt.status {
				t.Fatalf("got %d %s, want %d", status, body, tt.status)
			}
			var got map[string]any
			_ = json.Unmarshal(body, &got)
			if tt.code != "" && got["errorCode"] != tt.code {
				t.Errorf("errorCode %v, want %s (%s)", got["errorCode"], tt.code, body)
			}
			if status != 200 && got["value"] != nil {
				t.Errorf("an error carries a value: %s", body)
			}
		})
	}
	if status, _ := e.do(http.MethodGet, "/ofrep/v1/evaluate/flags/support-bot", auth, nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", status)
	}
}

// Bulk evaluation lists every agent with an ETag; If-None-Match with it is
// 304 until the state changes.
func TestOFREPBulkETag(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_FLAG_TOKEN": flagToken}})
	auth := http.Header{"Authorization": {"Bearer " + flagToken}, "Content-Type": {"application/json"}}
	ctx := []byte(`{"context":{"targetingKey":"s-1"}}`)
	bulk := func(inm string) (int, string, map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/ofrep/v1/evaluate/flags", strings.NewReader(string(ctx)))
		req.Header = auth.Clone()
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var got struct {
			Flags []struct{ Key, Value string } `json:"flags"`
		}
		_ = json.NewDecoder(res.Body).Decode(&got)
		values := map[string]string{}
		for _, f := range got.Flags {
			values[f.Key] = f.Value
		}
		return res.StatusCode, res.Header.Get("ETag"), values
	}
	status, etag, values := bulk("")
	if status != 200 || etag == "" || values["support-bot"] != "running" || values["flag-bot"] != "running" {
		t.Fatalf("bulk: %d etag %q %v", status, etag, values)
	}
	if status, _, _ := bulk(etag); status != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", status)
	}
	change(t, e, "halt", map[string]any{"sessions": []string{"s-1"}})
	status, etag2, values := bulk(etag)
	if status != 200 || etag2 == etag || values["support-bot"] != "halted" {
		t.Errorf("after a halt: %d etag %q (was %q) %v, want 200 with a new ETag and support-bot halted", status, etag2, etag, values)
	}
}
