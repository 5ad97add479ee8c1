package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/migrations/dbtest"
)

// sqliteSettings is what one connection of the serving store runs with.
type sqliteSettings struct {
	synchronous, foreignKeys, busyTimeout int
	journalMode                           string
}

// eachConnection reads the settings of every connection the pool may open,
// holding them all at once so each is a different connection: the pragmas
// are per connection, and a writer may be handed any of them.
func eachConnection(t *testing.T, db *sqlx.DB) []sqliteSettings {
	t.Helper()
	ctx := context.Background()
	n := db.Stats().MaxOpenConnections
	if n <= 0 {
		t.Fatal("the SQLite pool is unbounded: cannot visit every connection")
	}
	out := make([]sqliteSettings, n)
	for i := range n {
		c, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close() // held until all are read, so the next Connx is a new one
		s := &out[i]
		for _, p := range []struct {
			pragma string
			dst    any
		}{
			{"synchronous", &s.synchronous}, {"journal_mode", &s.journalMode},
			{"foreign_keys", &s.foreignKeys}, {"busy_timeout", &s.busyTimeout},
		} {
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.dst); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, p.pragma, err)
			}
		}
	}
	if st := db.Stats(); st.OpenConnections != n {
		t.Fatalf("visited %d connections of a pool of %d", st.OpenConnections, n)
	}
	return out
}

// Issue 29, acceptance 1: the store `reins serve` opens fsyncs every commit
// (synchronous FULL = 2) in WAL mode on every connection of its pool, the
// only one reins writes with, so whatever reins acknowledged survives a
// power loss. The settings the rest of the store relies on (foreign keys,
// the busy timeout) hold on each connection too.
func TestServingStoreFsyncsEveryCommitOnEveryConnection(t *testing.T) {
	e := startTestMain(t, testOptions{})
	// Traffic first, so the connections read are those the server has used.
	if code, body := e.webhook("alertmanager", alertmanagerBody(t, "support-bot")); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	for i, s := range eachConnection(t, e.Main.DB) {
		if s.synchronous != 2 || !strings.EqualFold(s.journalMode, "wal") || s.foreignKeys != 1 || s.busyTimeout != 5000 {
			t.Errorf("connection %d runs synchronous=%d journal_mode=%s foreign_keys=%d busy_timeout=%d, want 2 (FULL), wal, 1, 5000",
				i, s.synchronous, s.journalMode, s.foreignKeys, s.busyTimeout)
		}
	}
}

// Issue 29: an operator who wants the old speed says so in the URL; every
// connection then runs NORMAL, and `reins validate --strict` and `reins
// doctor` warn about it.
func TestSQLiteSynchronousNormalIsExplicitAndWarned(t *testing.T) {
	dbURL := dbtest.SQLiteURL(t) + "?_pragma=synchronous(NORMAL)"
	e := startTestMain(t, testOptions{DBURL: dbURL})
	for i, s := range eachConnection(t, e.Main.DB) {
		if s.synchronous != 1 || !strings.EqualFold(s.journalMode, "wal") {
			t.Errorf("connection %d runs synchronous=%d journal_mode=%s, want 1 (NORMAL) as the URL asks, wal",
				i, s.synchronous, s.journalMode)
		}
	}

	env := map[string]string{}
	for k, v := range e.env {
		env[k] = v
	}
	run := func(args ...string) (int, string) {
		code, out, errOut := cli(t, env, args...)
		return code, out + errOut
	}
	line := func(status, part string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + status + `\s+` + part + `\s`)
	}
	code, out := run("validate", "--strict")
	if code == 0 || !strings.Contains(out, "synchronous=NORMAL") || !strings.Contains(out, "power loss") {
		t.Errorf("validate --strict with synchronous NORMAL: exit %d, want 1 and a warning naming it:\n%s", code, out)
	}
	code, out = run("doctor")
	if !line("DEGRADED", "durability").MatchString(out) || !strings.Contains(out, "power loss") {
		t.Errorf("doctor with synchronous NORMAL: exit %d, want a DEGRADED durability line:\n%s", code, out)
	}

	// A journal other than the write-ahead log the store relies on is
	// warned about too (MEMORY does not even survive a crash of reins).
	env["REINS_DATABASE_URL"] = strings.TrimSuffix(dbURL, "?_pragma=synchronous(NORMAL)") + "?_pragma=journal_mode(MEMORY)"
	if code, out := run("validate", "--strict"); code == 0 || !strings.Contains(out, "journal_mode=MEMORY") {
		t.Errorf("validate --strict with journal_mode MEMORY: exit %d, want 1 and a warning naming it:\n%s", code, out)
	}
	if _, out := run("doctor"); !line("DEGRADED", "durability").MatchString(out) || !strings.Contains(out, "journal_mode=MEMORY") {
		t.Errorf("doctor with journal_mode MEMORY: want a DEGRADED durability line naming it:\n%s", out)
	}

	// The default URL gets no such warning.
	env["REINS_DATABASE_URL"] = strings.TrimSuffix(dbURL, "?_pragma=synchronous(NORMAL)")
	if _, out := run("validate", "--strict"); strings.Contains(out, "synchronous") {
		t.Errorf("validate --strict warns about the default store:\n%s", out)
	}
	if _, out := run("doctor"); !line("ok", "durability").MatchString(out) {
		t.Errorf("doctor on the default store: want an ok durability line:\n%s", out)
	}
}
