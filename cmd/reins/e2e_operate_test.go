package main

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// brokenElsewhere breaks the test config outside support-bot's entry: typos
// in flag-bot's entry, in the alerts section, and a third agent with
// an unknown team, as a colleague's half-done edit leaves it.
func brokenElsewhere(good string) string {
	broken := strings.Replace(good, "  group_window: 4h\n", "  group_windw: 4h\n", 1)
	broken = strings.Replace(broken, "      adapter: flag\n", "      adapter: flagg\n", 1)
	return broken + "  triage-bot:\n    team: suport-ai\n    kill_authority:\n      userz: [U01ALICE]\n    halt:\n      adapter: flag\n"
}

// Break-glass needs only what it uses: `reins kill` and `reins resume` of
// support-bot work although other entries of the file are broken, and say
// in one line what else is broken; an agent whose own entry is broken is
// refused with its own problems.
func TestCLIKillWorksWhenOtherEntriesAreBroken(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	cfg := writeTestConfig(t, hook.URL())
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(brokenElsewhere(string(good))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "REINS_CONFIG": cfg, "SUPPORT_BOT_HALT_SECRET": haltSecret}
	if code, out, _ := cli(t, env, "validate"); code != 1 || !strings.Contains(out, "5 errors") {
		t.Fatalf("validate: exit %d, want 1 with 5 errors (the test's premise)\n%s", code, out)
	}

	code, out, errOut := cli(t, env, "kill", "support-bot", "--reason", "runaway refunds")
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("kill support-bot with other entries broken: exit %d\n%s\n%s", code, out, errOut)
	}
	if msgs := hook.Messages(); len(msgs) == 0 || msgs[0].Action != "halt" {
		t.Fatalf("the halt endpoint got %+v, want a halt (then a status read-back)", msgs)
	}
	note := strings.TrimSpace(errOut)
	if strings.Count(note, "\n") != 0 || !strings.Contains(note, "5 problems outside support-bot's entry") ||
		!strings.Contains(note, "alerts, agent flag-bot, agent triage-bot") || !strings.Contains(note, "reins validate") {
		t.Errorf("kill's stderr, want one line naming what else is broken:\n%s", errOut)
	}
	code, out, errOut = cli(t, env, "resume", "support-bot")
	if code != 0 || !strings.Contains(out, "verified") || !strings.Contains(errOut, "outside support-bot's entry") {
		t.Fatalf("resume support-bot: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = cli(t, env, "kill", "flag-bot", "--reason", "x")
	if code != 1 || !strings.Contains(errOut, "the entry of flag-bot in the config is invalid (1 problem)") ||
		!strings.Contains(errOut, `unknown adapter "flagg"`) || strings.Contains(errOut, "triage-bot") {
		t.Errorf("kill flag-bot (its own entry broken): exit %d, want 1 with its own problem only\n%s\n%s", code, out, errOut)
	}
}

// readyzDegraded returns the degraded parts of /readyz?verbose=1.
func readyzDegraded(t *testing.T, e *testEnv) map[string]string {
	t.Helper()
	// The API token is sent in case the verbose report comes to need it.
	code, body := e.do("GET", "/readyz?verbose=1", http.Header{"Authorization": {"Bearer " + apiToken}}, nil)
	var ready struct{ Degraded []healthCheck }
	if err := json.Unmarshal(body, &ready); err != nil || code != 200 {
		t.Fatalf("/readyz?verbose=1 = %d %s", code, body)
	}
	parts := map[string]string{}
	for _, c := range ready.Degraded {
		parts[c.Part] = c.Detail
	}
	return parts
}

// doctorLine returns the detail of doctor's line for part and its status.
func doctorLine(out, part string) (status, detail string) {
	m := regexp.MustCompile(`(?m)^(ok|DEGRADED)\s+` + regexp.QuoteMeta(part) + `\s+(.*)$`).FindStringSubmatch(out)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// A reload (SIGHUP) of an invalid file is refused and the old file stays in
// force: /readyz?verbose=1 says so as a degraded config, with when and how
// many problems, until a good reload; `reins doctor` says the file on disk
// is invalid.
func TestRejectedReloadIsDegraded(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if d, ok := readyzDegraded(t, e)["config"]; ok {
		t.Fatalf("config degraded before any reload: %s", d)
	}
	cfg := e.env["REINS_CONFIG"]
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(brokenElsewhere(string(good))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err == nil {
		t.Fatal("the reload of an invalid file succeeded")
	}
	d := readyzDegraded(t, e)["config"]
	if !regexp.MustCompile(`on disk rejected at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: 5 problems .*running the file loaded at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(2 agents\)`).MatchString(d) {
		t.Errorf("/readyz?verbose=1 config after a rejected reload: %q", d)
	}
	env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": cfg}
	code, out, errOut := cli(t, env, "doctor")
	if status, detail := doctorLine(out, "config"); code != 1 || status != "DEGRADED" ||
		!strings.Contains(detail, "on disk is invalid") || !strings.Contains(detail, "5 problems") {
		t.Errorf("doctor with the file rejected: exit %d, config line %s %q\n%s%s", code, status, detail, out, errOut)
	}
	if status, _ := doctorLine(out, "database"); status != "ok" {
		t.Errorf("doctor stopped at the config instead of checking the rest:\n%s", out)
	}

	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err != nil {
		t.Fatal(err)
	}
	if d, ok := readyzDegraded(t, e)["config"]; ok {
		t.Errorf("config still degraded after a good reload: %s", d)
	}
}

// Telemetry without an OTLP token (every span refused) and the web view
// when off are listed as degraded by /readyz?verbose=1 and `reins doctor`,
// saying what it costs and how to fix it; set up, they are ok.
func TestDegradedTelemetryAndWebView(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_OTLP_TOKEN": ""}})
	parts := readyzDegraded(t, e)
	if d := parts["telemetry"]; !strings.Contains(d, "REINS_OTLP_TOKEN is not set: every span sent to /v1/traces is refused") ||
		!strings.Contains(d, `SLAs of 1 agent stay at "no data"`) {
		t.Errorf("/readyz?verbose=1 telemetry: %q", d)
	}
	if d := parts["web"]; !strings.HasPrefix(d, "off") || !strings.Contains(d, "REINS_SLACK_CLIENT_ID") || !strings.Contains(d, "REINS_WEB_AUTH=proxy") {
		t.Errorf("/readyz?verbose=1 web: %q", d)
	}
	env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"]}
	_, out, _ := cli(t, env, "doctor")
	for _, part := range []string{"telemetry", "web"} {
		if status, detail := doctorLine(out, part); status != "DEGRADED" || detail != parts[part] {
			t.Errorf("doctor %s: %s %q, want DEGRADED as /readyz says\n%s", part, status, detail, out)
		}
	}

	on := map[string]string{"REINS_OTLP_TOKEN": "otlp-token", "REINS_WEB_AUTH": "proxy",
		"REINS_WEB_USER_HEADER": "X-Forwarded-Email", "REINS_WEB_TRUSTED_PROXIES": "10.0.0.0/8"}
	e = startTestMain(t, testOptions{Env: on})
	parts = readyzDegraded(t, e)
	for _, part := range []string{"telemetry", "web"} {
		if d, ok := parts[part]; ok {
			t.Errorf("%s degraded although set up: %s", part, d)
		}
	}
	for k, v := range on {
		env[k] = v
	}
	env["REINS_DATABASE_URL"], env["REINS_CONFIG"] = e.DBURL, e.env["REINS_CONFIG"]
	_, out, _ = cli(t, env, "doctor")
	for _, part := range []string{"telemetry", "web"} {
		if status, _ := doctorLine(out, part); status != "ok" {
			t.Errorf("doctor %s: %q, want ok\n%s", part, status, out)
		}
	}
}

// The same through the real process: `reins serve`, a broken file, SIGHUP.
func TestSIGHUPWithInvalidFileIsDegraded(t *testing.T) {
	cfg := writeTestConfig(t, "http://127.0.0.1:1/halt")
	good, _ := os.ReadFile(cfg)
	addr := freeAddr(t)
	child := startChild(t, map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "REINS_CONFIG": cfg, "REINS_LISTEN": addr,
		"REINS_API_TOKEN": apiToken})
	base := "http://" + addr
	waitHTTP(t, base+"/readyz")
	config := func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/readyz?verbose=1", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var ready struct{ Checks []healthCheck }
		if err := json.NewDecoder(res.Body).Decode(&ready); err != nil {
			t.Fatal(err)
		}
		for _, c := range ready.Checks {
			if c.Part == "config" {
				return c.OK, c.Detail
			}
		}
		return false, "no config line"
	}
	hup := func(content []byte, wantOK bool, want string) {
		t.Helper()
		if err := os.WriteFile(cfg, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := child.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var ok bool
		var detail string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok, detail = config(); ok == wantOK && strings.Contains(detail, want) {
				return
			}
		}
		t.Fatalf("after SIGHUP the config line is ok=%v %q, want ok=%v with %q", ok, detail, wantOK, want)
	}
	hup([]byte(brokenElsewhere(string(good))), false, "on disk rejected at ")
	hup(good, true, "2 agents")
}
