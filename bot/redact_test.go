package bot

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A response_url is a credential: when posting to it fails, the log says so
// without the URL, with and without the Web API configured.
func TestResponseURLNeverLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/commands/T0FAKE/1234/s3cretHookPath"
	ln.Close() // nothing listens: every post fails with a *url.Error naming the URL
	for name, withChat := range map[string]bool{"WebAPI": true, "NoWebAPI": false} {
		t.Run(name, func(t *testing.T) {
			var logs lockedBuffer
			svc := &fakeService{WhoFn: func(string) (*incidents.AgentInfo, error) {
				return nil, incidents.Errorf(incidents.EINTERNAL, "boom")
			}}
			hs := newHarness(t, svc)
			cfg := Config{SigningSecret: testSecret, Service: svc, State: incidentstest.NewStore(),
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			if withChat {
				cfg.Chat = NewChat(NewClient("xoxb-test", hs.slack.APIURL(), nil), nil)
			}
			hs.h = NewHandler(cfg)
			form := url.Values{"command": {"/agent"}, "text": {"who support-bot"}, "user_id": {"U01ALICE"},
				"channel_id": {"C0GENERAL"}, "response_url": {dead}, "trigger_id": {"T.redact"}}
			if rec := hs.serve(hs.h.Commands(), form.Encode(), nil); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			hs.h.Wait()
			out := logs.String()
			if !strings.Contains(out, "response_url") {
				t.Fatalf("the failed reply was not logged at all:\n%s", out)
			}
			if strings.Contains(out, "s3cretHookPath") || strings.Contains(out, dead) {
				t.Fatalf("the log holds the response_url:\n%s", out)
			}
		})
	}
}
