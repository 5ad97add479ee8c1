package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reins-oss/reins/migrations/dbtest"
)

// TestMain lets the test binary act as the reins binary in a child process,
// so a test can SIGKILL a real reins mid-flight.
func TestMain(m *testing.M) {
	if os.Getenv("REINS_TEST_CHILD") == "1" {
		ctx, stop := signalContext()
		defer stop()
		os.Exit(run(ctx, os.Args[len(os.Args)-1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(dbtest.Main(m))
}

// Slack rate-limits channel creation (Retry-After: 2) and PagerDuty answers
// 500 three times: everything is still delivered, in order, once.
func TestDeliverySurvivesRateLimitsAndErrors(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.Slack.RateLimit("conversations.create", 1, 2)
	e.PD.FailNext(3, http.StatusInternalServerError, "")

	if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/firing.json")); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	e.eventually("page after three 500s", func() bool { return e.PD.Triggers("reins-1") == 1 })
	e.eventually("channel and summary after the rate limit", func() bool {
		chs := incidentChannels(e.Slack)
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
	})
	creates := e.Slack.Calls("conversations.create")
	if len(creates) != 2 || creates[0].Error != "ratelimited" {
		t.Fatalf("conversations.create calls: %+v", creates)
	}
	if gap := creates[1].At.Sub(creates[0].At); gap < 2*time.Second {
		t.Errorf("retried after %s; Slack said Retry-After: 2", gap)
	}
	posts := e.Slack.Calls("chat.postMessage")
	if len(posts) == 0 || posts[0].At.Before(creates[1].At) {
		t.Errorf("the summary was posted before the channel existed")
	}
	time.Sleep(300 * time.Millisecond) // let any duplicate surface
	if n := e.PD.Triggers("reins-1"); n != 1 {
		t.Errorf("got %d accepted pages, want 1", n)
	}
	if n := len(incidentChannels(e.Slack)); n != 1 {
		t.Errorf("got %d channels, want 1", n)
	}
}

// A reins killed (SIGKILL) after committing an alert and before delivering it
// delivers after restart, once.
func TestCrashAfterCommitDeliversAfterRestart(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if err := e.Main.Close(); err != nil { // the fakes and database stay; the child takes over
		t.Fatal(err)
	}
	// Nothing can be delivered while the child runs: Slack is rate-limited
	// and PagerDuty fails, so the outbox holds the work when it dies.
	e.Slack.RateLimit("conversations.create", 1000, 1)
	e.PD.FailNext(1000, http.StatusTooManyRequests, "1")

	env := e.env
	env["REINS_LISTEN"] = freeAddr(t)
	child := startChild(t, env)
	url := "http://" + env["REINS_LISTEN"]
	waitHTTP(t, url+"/readyz")
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/alertmanager", strings.NewReader(string(fixture(t, "alertmanager/firing.json"))))
	req.Header.Set("Authorization", "Bearer "+webhookToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("webhook to the child: %v %v", res, err)
	}
	res.Body.Close()
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if n := e.PD.Triggers("reins-1"); n != 0 || len(incidentChannels(e.Slack)) != 0 {
		t.Fatalf("delivered before the crash; the test proves nothing")
	}

	e.Slack.ClearFaults()
	e.PD.ClearFailures()
	env["REINS_LISTEN"] = "127.0.0.1:0"
	e.start()
	// An item the child had claimed when it died stays leased for the lease
	// (30 s) before another worker may take it.
	e.eventuallyWithin(45*time.Second, "page and channel after restart", func() bool {
		return e.PD.Triggers("reins-1") == 1 && len(incidentChannels(e.Slack)) == 1
	})
	time.Sleep(500 * time.Millisecond)
	if n := e.PD.Triggers("reins-1"); n != 1 {
		t.Errorf("got %d pages after restart, want 1", n)
	}
	if n := len(incidentChannels(e.Slack)); n != 1 {
		t.Errorf("got %d channels after restart, want 1", n)
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startChild runs this test binary as `reins serve` with env.
func startChild(t testing.TB, env map[string]string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "serve")
	// Three children at 32 connections each and the rest of the suite would
	// exhaust a stock PostgreSQL's 100: each child takes 8 unless told.
	cmd.Env = []string{"REINS_TEST_CHILD=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"REINS_DATABASE_MAX_CONNS=8"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s", k, v))
	}
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

func waitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signalNotify(context.Background())
}
