package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/migrations/dbtest"
)

// memBody is an OTLP protobuf request of nearly 8 MiB: sessions × spans
// spans of agent support-bot, each carrying a 700-byte attribute.
func memBody(t *testing.T, req, sessionsN, spansN int) ([]byte, []string) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-bot")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	pad := strings.Repeat("x", 680)
	var ids []string
	for s := range sessionsN {
		session := fmt.Sprintf("s-mem-%02d-%03d", req, s)
		ids = append(ids, session)
		for k := range spansN {
			sp := spans.AppendEmpty()
			sp.SetName("chat")
			var tid [16]byte
			var sid [8]byte
			copy(tid[:], fmt.Sprintf("%02d%03d%011d", req, s, k))
			copy(sid[:], fmt.Sprintf("%02d%03d%03d", req, s, k))
			sp.SetTraceID(pcommon.TraceID(tid))
			sp.SetSpanID(pcommon.SpanID(sid))
			now := time.Now()
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
			sp.Attributes().PutStr("session.id", session)
			sp.Attributes().PutStr("gen_ai.operation.name", "chat")
			sp.Attributes().PutStr("app.padding", pad)
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b, ids
}

// Issue 23, acceptance 5: 16 exporters send 8 MiB bodies at once to a
// `reins serve` process. Its peak RSS (VmHWM) stays under 400 MB; every
// request is answered 200, or 429/503 with Retry-After (then retried, as
// exporters do); and every span of a request answered 200 is stored.
func TestOTLPConcurrentLargeBodiesStayWithinMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a reins process and sends 128 MiB")
	}
	db := dbtest.SQLiteURL(t)
	env := processEnv(t, db)
	env["REINS_OTLP_TOKEN"] = otlpToken
	// The built binary, not this test binary re-run: under -race the
	// detector's shadow memory (5-10x) would be measured, not reins'.
	child := startBuiltBinary(t, env)
	base := "http://" + env["REINS_LISTEN"]
	waitHTTP(t, base+"/readyz")

	const exporters, sessionsN, spansN = 16, 100, 100
	bodies := make([][]byte, exporters)
	ids := make([][]string, exporters)
	for i := range exporters {
		bodies[i], ids[i] = memBody(t, i, sessionsN, spansN)
		if len(bodies[i]) > 8<<20 || len(bodies[i]) < 7<<20 {
			t.Fatalf("body %d is %d bytes, want just under 8 MiB", i, len(bodies[i]))
		}
	}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range exporters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Exporters retry for up to 5 minutes by default (the OTel
			// SDKs' max elapsed time); under -race a body takes seconds,
			// so a count of attempts would measure the machine.
			for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/traces", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+otlpToken)
				req.Header.Set("Content-Type", "application/x-protobuf")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("exporter %d: %v", i, err)
					return
				}
				res.Body.Close()
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
				switch res.StatusCode {
				case http.StatusOK:
					return
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
					if err != nil || ra < 1 {
						t.Errorf("exporter %d: %d without Retry-After", i, res.StatusCode)
						return
					}
					time.Sleep(100 * time.Millisecond) // a fast exporter: the budget, not the pause, is under test
				default:
					t.Errorf("exporter %d: answered %d", i, res.StatusCode)
					return
				}
			}
			t.Errorf("exporter %d never got 200", i)
		}()
	}
	close(start)
	wg.Wait()
	hwm := vmHWM(t, child.Process.Pid)
	t.Logf("answers %v; peak RSS %d MB", statuses, hwm>>20)
	if hwm > 400<<20 {
		t.Errorf("peak RSS %d MB, want at most 400 MB", hwm>>20)
	}
	store := openStore(t, db)
	all, err := store.FindSessions(context.Background(), "support-bot", time.Time{}, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]int64{}
	for _, tt := range all {
		steps[tt.Session] = tt.Steps
	}
	for i := range exporters {
		for _, id := range ids[i] {
			if steps[id] != spansN {
				t.Fatalf("exporter %d, session %s: %d of %d steps stored", i, id, steps[id], spansN)
			}
		}
	}
}

// vmHWM reads a process's peak resident set size from /proc.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// startBuiltBinary builds cmd/reins as a user would (no race detector, no
// test hooks) and starts `reins serve` with env only.
func startBuiltBinary(t *testing.T, env map[string]string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reins")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
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
