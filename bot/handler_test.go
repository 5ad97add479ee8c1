package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/ownership"
)

const testSecret = "test-signing-secret"

// fakeService implements Service with function fields; a nil field fails the
// test when called, so a test states every service call it expects.
type fakeService struct {
	t     *testing.T
	mu    sync.Mutex
	calls []string
	keys  map[string]bool // remembered idempotency keys

	DeclareFn           func(actor incidents.Actor, agent, title string) (*incidents.Incident, bool, error)
	CheckAuthorityFn    func(actor incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error)
	HaltFn              func(cmd incidents.HaltCommand) (*incidents.Halt, error)
	StatusFn            func(agent string) ([]incidents.AgentStatus, error)
	WhoFn               func(agent string) (*incidents.AgentInfo, error)
	FindIncidentFn      func(id int64) (*incidents.Incident, error)
	IncidentByChannelFn func(channelID string) (*incidents.Incident, error)
	StartChecklistFn    func(actor incidents.Actor, id int64) (*incidents.Checklist, error)
	AnswerChecklistFn   func(actor incidents.Actor, id int64, key, choice, details string) (*incidents.Checklist, error)
	SnoozeFn            func(id int64, d time.Duration) error
	StopFn              func(id int64) error
	ResolveFn           func(actor incidents.Actor, id int64, note string) (*incidents.Incident, error)
	AnswerPostmortemFn  func(actor incidents.Actor, id int64, key, text string) error
	PostPostmortemFn    func(id int64) error
	RememberFn          func(key string) (bool, error)
	TimelineFn          func(id int64) ([]*incidents.Event, error)
	Reg                 *ownership.Registry
}

var _ Service = (*fakeService)(nil)

func (f *fakeService) record(name string, fn any) {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	if fn == nil || reflect.ValueOf(fn).IsNil() {
		f.t.Errorf("unexpected service call %s", name)
	}
}

// Calls returns the names of the service methods called so far.
func (f *fakeService) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeService) count(name string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == name {
			n++
		}
	}
	return n
}

// Registry returns Reg, nil unless a test sets it (nil finds no agent).
func (f *fakeService) Registry() *ownership.Registry { return f.Reg }

func (f *fakeService) Timeline(_ context.Context, id int64) ([]*incidents.Event, error) {
	if f.TimelineFn == nil {
		return nil, nil
	}
	return f.TimelineFn(id)
}

func (f *fakeService) Declare(_ context.Context, a incidents.Actor, agent, title string) (*incidents.Incident, bool, error) {
	if f.record("Declare", f.DeclareFn); f.DeclareFn == nil {
		return nil, false, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.DeclareFn(a, agent, title)
}

func (f *fakeService) CheckAuthority(_ context.Context, a incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error) {
	if f.record("CheckAuthority", f.CheckAuthorityFn); f.CheckAuthorityFn == nil {
		return ownership.Decision{}, nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.CheckAuthorityFn(a, agent, action)
}

func (f *fakeService) Halt(_ context.Context, cmd incidents.HaltCommand) (*incidents.Halt, error) {
	if f.record("Halt", f.HaltFn); f.HaltFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.HaltFn(cmd)
}

func (f *fakeService) Status(_ context.Context, agent string) ([]incidents.AgentStatus, error) {
	if f.record("Status", f.StatusFn); f.StatusFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.StatusFn(agent)
}

func (f *fakeService) Who(_ context.Context, agent string) (*incidents.AgentInfo, error) {
	if f.record("Who", f.WhoFn); f.WhoFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.WhoFn(agent)
}

func (f *fakeService) FindIncident(_ context.Context, id int64) (*incidents.Incident, error) {
	if f.record("FindIncident", f.FindIncidentFn); f.FindIncidentFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.FindIncidentFn(id)
}

func (f *fakeService) IncidentByChannel(_ context.Context, ch string) (*incidents.Incident, error) {
	if f.record("IncidentByChannel", f.IncidentByChannelFn); f.IncidentByChannelFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.IncidentByChannelFn(ch)
}

func (f *fakeService) StartChecklist(_ context.Context, a incidents.Actor, id int64) (*incidents.Checklist, error) {
	if f.record("StartChecklist", f.StartChecklistFn); f.StartChecklistFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.StartChecklistFn(a, id)
}

func (f *fakeService) AnswerChecklist(_ context.Context, a incidents.Actor, id int64, key, choice, details string) (*incidents.Checklist, error) {
	if f.record("AnswerChecklist", f.AnswerChecklistFn); f.AnswerChecklistFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.AnswerChecklistFn(a, id, key, choice, details)
}

func (f *fakeService) SnoozeReminders(_ context.Context, _ incidents.Actor, id int64, d time.Duration) error {
	if f.record("SnoozeReminders", f.SnoozeFn); f.SnoozeFn == nil {
		return incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.SnoozeFn(id, d)
}

func (f *fakeService) StopReminders(_ context.Context, _ incidents.Actor, id int64) error {
	if f.record("StopReminders", f.StopFn); f.StopFn == nil {
		return incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.StopFn(id)
}

func (f *fakeService) Resolve(_ context.Context, a incidents.Actor, id int64, note string) (*incidents.Incident, error) {
	if f.record("Resolve", f.ResolveFn); f.ResolveFn == nil {
		return nil, incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.ResolveFn(a, id, note)
}

func (f *fakeService) AnswerPostmortem(_ context.Context, a incidents.Actor, id int64, key, text string) error {
	if f.record("AnswerPostmortem", f.AnswerPostmortemFn); f.AnswerPostmortemFn == nil {
		return incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.AnswerPostmortemFn(a, id, key, text)
}

func (f *fakeService) PostPostmortem(_ context.Context, _ incidents.Actor, id int64) error {
	if f.record("PostPostmortem", f.PostPostmortemFn); f.PostPostmortemFn == nil {
		return incidents.Errorf(incidents.EINTERNAL, "unexpected")
	}
	return f.PostPostmortemFn(id)
}

// Remember defaults to a real in-memory set: most tests want idempotency as
// the store would give it.
func (f *fakeService) Remember(_ context.Context, key string) (bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "Remember")
	fn := f.RememberFn
	f.mu.Unlock()
	if fn != nil {
		return fn(key)
	}
	return f.remember(key), nil
}

func (f *fakeService) remember(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]bool{}
	}
	first := !f.keys[key]
	f.keys[key] = true
	return first
}

// harness is a Handler wired to a fake service and the Slack fake.
type harness struct {
	t     *testing.T
	h     *Handler
	svc   *fakeService
	slack *slackfake.Server
	now   time.Time
	state *incidentstest.Store
}

func newHarness(t *testing.T, svc *fakeService) *harness {
	t.Helper()
	svc.t = t
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	fake.AddChannel("C0INC42", "inc-42-support-bot", slackfake.BotUserID, "U01ALICE", "U02MALLORY")
	fake.AddChannel("C0GENERAL", "general", slackfake.BotUserID, "U01ALICE", "U02MALLORY")
	state := incidentstest.NewStore()
	h := NewHandler(Config{SigningSecret: testSecret, Service: svc, State: state, Chat: NewChat(fake.Client(), nil), Log: testLogger(t)})
	t.Cleanup(h.Wait)
	return &harness{t: t, h: h, svc: svc, slack: fake, state: state}
}

// serve sends a signed POST to handler and returns the recorded response.
func (hs *harness) serve(handler http.Handler, body string, header http.Header) *httptest.ResponseRecorder {
	hs.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/slack/x", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range Sign(testSecret, time.Now(), []byte(body)) {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// command runs `/agent text` as user in channel, waits for the background
// work and returns the response_url posts it caused.
func (hs *harness) command(user, channel, text string) (*httptest.ResponseRecorder, []slackfake.Response) {
	hs.t.Helper()
	before := len(hs.slack.Responses())
	form := url.Values{"command": {"/agent"}, "text": {text}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"channel_id": {channel}, "response_url": {hs.slack.ResponseURL()}, "trigger_id": {fmt.Sprintf("T.%d", clicks.Add(1))}, "team_id": {"T0FAKE"}}
	rec := hs.serve(hs.h.Commands(), form.Encode(), nil)
	if rec.Code != http.StatusOK {
		hs.t.Fatalf("command %q: status %d, body %s", text, rec.Code, rec.Body)
	}
	hs.h.Wait()
	return rec, hs.slack.Responses()[before:]
}

// interact posts an interaction payload and waits for its work.
func (hs *harness) interact(payload any) *httptest.ResponseRecorder {
	hs.t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		hs.t.Fatal(err)
	}
	rec := hs.serve(hs.h.Interactions(), url.Values{"payload": {string(raw)}}.Encode(), nil)
	if rec.Code != http.StatusOK {
		hs.t.Fatalf("interaction: status %d, body %s", rec.Code, rec.Body)
	}
	hs.h.Wait()
	return rec
}

func lastText(t *testing.T, rs []slackfake.Response) string {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("no response_url post, want one")
	}
	return rs[len(rs)-1].Text
}

func wantContains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("reply %q\nmissing %q", got, w)
		}
	}
}

func TestRefusedRequests(t *testing.T) {
	body := url.Values{"command": {"/agent"}, "text": {"kill support-bot"}, "user_id": {"U01ALICE"}}.Encode()
	now := time.Now()
	tests := map[string]http.Header{
		"ErrUnsigned":  {},
		"ErrForged":    Sign("not-the-secret", now, []byte(body)),
		"ErrStale":     Sign(testSecret, now.Add(-10*time.Minute), []byte(body)),
		"ErrOtherBody": Sign(testSecret, now, []byte(body+"x")),
	}
	for name, header := range tests {
		t.Run(name, func(t *testing.T) {
			svc := &fakeService{}
			hs := newHarness(t, svc)
			for path, handler := range map[string]http.Handler{"commands": hs.h.Commands(),
				"interactions": hs.h.Interactions(), "events": hs.h.Events()} {
				req := httptest.NewRequest(http.MethodPost, "/slack/"+path, strings.NewReader(body))
				for k, v := range header {
					req.Header[k] = v
				}
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				hs.h.Wait()
				var got map[string]string
				if rec.Code != http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got["error"] == "" {
					t.Errorf("%s: status %d body %s, want 401 with a JSON error", path, rec.Code, rec.Body)
				}
			}
			if calls := svc.Calls(); len(calls) != 0 {
				t.Fatalf("service calls = %v, want none", calls)
			}
			if rs := hs.slack.Responses(); len(rs) != 0 {
				t.Fatalf("response_url posts = %d, want none", len(rs))
			}
		})
	}
}

func TestRequestLimits(t *testing.T) {
	hs := newHarness(t, &fakeService{})
	t.Run("ErrTooLarge", func(t *testing.T) {
		rec := hs.serve(hs.h.Commands(), "text="+strings.Repeat("a", maxBody), nil)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", rec.Code)
		}
	})
	t.Run("ErrMethod", func(t *testing.T) {
		rec := httptest.NewRecorder()
		hs.h.Commands().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/slack/commands", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("status = %d, want 405", rec.Code)
		}
	})
	t.Run("ErrNoPayload", func(t *testing.T) {
		if rec := hs.serve(hs.h.Interactions(), "payload=", nil); rec.Code != http.StatusBadRequest {
			t.Fatalf("status = %d, want 400", rec.Code)
		}
	})
	if calls := hs.svc.Calls(); len(calls) != 0 {
		t.Fatalf("service calls = %v, want none", calls)
	}
}

func TestEvents(t *testing.T) {
	t.Run("URLVerification", func(t *testing.T) {
		hs := newHarness(t, &fakeService{})
		rec := hs.serve(hs.h.Events(), `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`, nil)
		var got map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("status %d body %s (%v)", rec.Code, rec.Body, err)
		}
		if want := "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"; got["challenge"] != want {
			t.Fatalf("challenge = %q, want %q", got["challenge"], want)
		}
	})
	mention := `{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention","user":"U01ALICE","text":"<@UBOT> hi","ts":"1.1","channel":"C0GENERAL"}}`
	t.Run("AppMentionAnsweredOnce", func(t *testing.T) {
		hs := newHarness(t, &fakeService{})
		hs.serve(hs.h.Events(), mention, nil)
		hs.h.Wait()
		hs.serve(hs.h.Events(), mention, nil) // same event_id delivered twice
		hs.h.Wait()
		msgs := hs.slack.Messages("C0GENERAL")
		if len(msgs) != 1 || msgs[0].ThreadTS != "1.1" || !strings.Contains(msgs[0].Text, "/agent kill") {
			t.Fatalf("messages = %+v, want one help reply in the thread", msgs)
		}
	})
	t.Run("RetryIgnored", func(t *testing.T) {
		hs := newHarness(t, &fakeService{})
		rec := hs.serve(hs.h.Events(), mention, http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}})
		hs.h.Wait()
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200", rec.Code)
		}
		if msgs, calls := hs.slack.Messages("C0GENERAL"), hs.svc.Calls(); len(msgs) != 0 || len(calls) != 0 {
			t.Fatalf("retry caused messages %v, service calls %v; want none", msgs, calls)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		hs := newHarness(t, &fakeService{})
		if rec := hs.serve(hs.h.Events(), `{"type":`, nil); rec.Code != http.StatusBadRequest {
			t.Fatalf("status = %d, want 400", rec.Code)
		}
	})
}

// TestAckBeforeWork proves the ack does not wait for the service: Status
// blocks until the test has the HTTP response in hand.
func TestAckBeforeWork(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	svc := &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) {
		close(entered)
		<-release
		return nil, nil
	}}
	hs := newHarness(t, svc)
	form := url.Values{"text": {"status"}, "user_id": {"U01ALICE"}, "response_url": {hs.slack.ResponseURL()}}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- hs.serve(hs.h.Commands(), form.Encode(), nil) }()
	select {
	case rec := <-done:
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Fatalf("ack = %d %q, want 200 with an empty body", rec.Code, rec.Body)
		}
	case <-time.After(2 * time.Second):
		close(release)
		t.Fatal("no ack while the service was busy")
	}
	<-entered
	if n := len(hs.slack.Responses()); n != 0 {
		t.Fatalf("response_url posts before the work finished = %d, want 0", n)
	}
	close(release)
	hs.h.Wait()
	if n := len(hs.slack.Responses()); n != 1 {
		t.Fatalf("response_url posts after the work = %d, want 1", n)
	}
}

// testLogger writes the handler's log to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// BenchmarkCommandAck measures the acknowledgement of a signed `/agent
// status` and `/agent kill` (by a person listed by ID): read, verify, parse,
// authority check for kill, queue the work. The requests are signed before
// the timer starts, and the work is held back as during a burst (an ack is
// in flight throughout), so only the ack is measured; BenchmarkVerifyFloor
// is what it is compared with (issue 25).
func BenchmarkCommandAck(b *testing.B) {
	for _, text := range []string{"status support-bot", "kill support-bot session s-1 perf run"} {
		b.Run(strings.Fields(text)[0], func(b *testing.B) {
			svc := &fakeService{t: &testing.T{}, Reg: incidentstest.Registry(),
				StatusFn: func(string) ([]incidents.AgentStatus, error) { return nil, nil }}
			h := NewHandler(Config{SigningSecret: testSecret, Service: svc, State: incidentstest.NewStore(),
				Authorizer: ownership.NewAuthorizer(nil, nil, time.Minute, nil, nil)})
			handler := h.Commands()
			// Each request is a new one (its own trigger_id): a repeat would be
			// dropped as a replay after the ack.
			bodies, headers := make([]string, b.N), make([]http.Header, b.N)
			for i := range b.N {
				bodies[i] = url.Values{"command": {"/agent"}, "text": {text}, "user_id": {"U01ALICE"},
					"user_name": {"alice"}, "channel_id": {"C0GENERAL"}, "team_id": {"T0FAKE"},
					"trigger_id": {strconv.Itoa(i)}}.Encode()
				headers[i] = Sign(testSecret, time.Now(), []byte(bodies[i]))
			}
			h.acks.serving()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(bodies[i]))
				req.Header = headers[i]
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
					b.Fatalf("status %d, body %s: want an empty 200", rec.Code, rec.Body)
				}
			}
			b.StopTimer()
			h.acks.served()
			h.Wait()
		})
	}
}

// BenchmarkVerifyFloor is the least any signed endpoint can cost: read the
// body, check the HMAC, answer 200. BenchmarkCommandAck is compared to it.
func BenchmarkVerifyFloor(b *testing.B) {
	v := Verifier{Secret: testSecret}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil || v.Verify(r.Header, body) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	body := url.Values{"command": {"/agent"}, "text": {"status support-bot"}, "user_id": {"U01ALICE"},
		"user_name": {"alice"}, "channel_id": {"C0GENERAL"}, "team_id": {"T0FAKE"}}.Encode()
	header := Sign(testSecret, time.Now(), []byte(body))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(body))
			req.Header = header.Clone()
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
