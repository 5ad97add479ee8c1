package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reins-oss/reins/migrations/dbtest"
)

// processEnv is the environment of a child `reins serve` on the given database.
func processEnv(t testing.TB, dbURL string) map[string]string {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir() + "/reins.yaml"
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", "http://127.0.0.1:1/halt")), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"REINS_DATABASE_URL": dbURL, "REINS_CONFIG": cfg, "REINS_LISTEN": freeAddr(t),
		"REINS_API_TOKEN": apiToken, "SUPPORT_BOT_HALT_SECRET": haltSecret, "PD_SUPPORT_AI_KEY": "k",
	}
}

// Two replicas started at the same moment on one fresh PostgreSQL database
// both come up: migrations run once, under the advisory lock.
func TestTwoReplicasStartTogether(t *testing.T) {
	db := dbtest.PostgresURL(t)
	envs := []map[string]string{processEnv(t, db), processEnv(t, db)}
	var wg sync.WaitGroup
	for _, env := range envs {
		wg.Add(1)
		go func() { defer wg.Done(); startChild(t, env) }()
	}
	wg.Wait()
	for _, env := range envs {
		waitHTTP(t, "http://"+env["REINS_LISTEN"]+"/readyz")
	}
}

// SIGHUP reloads reins.yaml: a broken file is rejected and the registry in
// force stays; a good one replaces it. Both show in GET /api/v1/agents.
func TestSIGHUPReload(t *testing.T) {
	env := processEnv(t, dbtest.SQLiteURL(t))
	child := startChild(t, env)
	base := "http://" + env["REINS_LISTEN"]
	waitHTTP(t, base+"/readyz")
	agents := func() []string {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/agents", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var got struct{ Agents []struct{ Name string } }
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range got.Agents {
			names = append(names, a.Name)
		}
		return names
	}
	hup := func(content string) {
		t.Helper()
		if err := os.WriteFile(env["REINS_CONFIG"], []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := child.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := os.ReadFile(env["REINS_CONFIG"])

	hup(strings.Replace(string(good), "adapter: flag", "adapter: teleport", 1))
	time.Sleep(500 * time.Millisecond)
	if got := strings.Join(agents(), ","); got != "flag-bot,support-bot" {
		t.Fatalf("after a broken reload: agents %s, want the old registry", got)
	}
	hup(strings.Replace(string(good), "  flag-bot:", "  summariser:", 1))
	deadline := time.Now().Add(10 * time.Second)
	for strings.Join(agents(), ",") != "summariser,support-bot" {
		if time.Now().After(deadline) {
			t.Fatalf("after a good reload: agents %v", agents())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
