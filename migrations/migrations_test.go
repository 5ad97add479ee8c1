package migrations_test

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		dialect migrations.Dialect
		dsn     string // prefix of the DSN
	}{
		{"Postgres", "postgres://postgres@127.0.0.1:5432/reins", migrations.Postgres, "postgres://postgres@127.0.0.1:5432/reins"},
		{"PostgreSQL", "postgresql://u:p@db/reins?sslmode=disable", migrations.Postgres, "postgresql://u:p@db/reins?sslmode=disable"},
		{"PostgresUpperCase", "POSTGRES://db/reins", migrations.Postgres, "POSTGRES://db/reins"},
		{"SQLiteColon", "sqlite:reins.db", migrations.SQLite, "reins.db?_pragma=busy_timeout"},
		{"SQLiteSlashes", "sqlite://data/reins.db", migrations.SQLite, "data/reins.db?"},
		{"SQLiteAbsolute", "sqlite:///var/lib/reins.db", migrations.SQLite, "/var/lib/reins.db?"},
		{"File", "file:reins.db", migrations.SQLite, "file:reins.db?"},
		{"BarePath", "./reins.db", migrations.SQLite, "./reins.db?"},
		{"BareAbsolute", "/var/lib/reins/reins.db", migrations.SQLite, "/var/lib/reins/reins.db?"},
		{"BareNameWithColon", "notes:2026.db", migrations.SQLite, "notes:2026.db?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dsn, err := migrations.ParseURL(tt.url)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			if d != tt.dialect || !strings.HasPrefix(dsn, tt.dsn) {
				t.Errorf("ParseURL(%q) = %q, %q; want %q, %q…", tt.url, d, dsn, tt.dialect, tt.dsn)
			}
		})
	}
}

func TestParseURLSQLiteSettings(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want []string
		not  []string
	}{
		{"OK", "sqlite:reins.db", []string{"busy_timeout%285000%29", "journal_mode%28WAL%29", "synchronous%28FULL%29", "foreign_keys%281%29", "_txlock=immediate"}, nil},
		{"SynchronousChosen", "sqlite:reins.db?_pragma=synchronous(NORMAL)", []string{"synchronous(NORMAL)"}, []string{"synchronous%28FULL"}},
		{"SynchronousChosenWithEquals", "sqlite:reins.db?_pragma=synchronous%3Doff", []string{"synchronous%3Doff"}, []string{"synchronous%28FULL"}},
		{"CallerWins", "sqlite:reins.db?_pragma=busy_timeout(100)&_txlock=deferred",
			[]string{"busy_timeout(100)", "_txlock=deferred", "journal_mode%28WAL%29"}, []string{"busy_timeout%285000", "_txlock=immediate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dsn, err := migrations.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(dsn, w) {
					t.Errorf("DSN %q lacks %q", dsn, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(dsn, n) {
					t.Errorf("DSN %q has %q", dsn, n)
				}
			}
		})
	}
}

// Issue 29: FULL unless the URL chooses otherwise, and a choice below FULL
// is reported as weak so validate and doctor can warn.
func TestSQLiteSynchronous(t *testing.T) {
	for _, tt := range []struct {
		url, level string
		weak       bool
	}{
		{"sqlite:reins.db", "FULL", false},
		{"reins.db", "FULL", false},
		{"file:reins.db?_pragma=synchronous(extra)", "EXTRA", false},
		{"sqlite:reins.db?_pragma=synchronous(NORMAL)", "NORMAL", true},
		{"sqlite:reins.db?_pragma=synchronous%3D1", "1", true},
		{"sqlite:reins.db?_pragma=Synchronous(off)", "OFF", true},
		{"postgres://u@h/db", "", false},
	} {
		level, weak, err := migrations.SQLiteSynchronous(tt.url)
		if err != nil || level != tt.level || weak != tt.weak {
			t.Errorf("SQLiteSynchronous(%q) = %q, %v, %v; want %q, %v", tt.url, level, weak, err, tt.level, tt.weak)
		}
	}
}

// The store's durability relies on the write-ahead log: a URL that sets
// another journal mode is reported so validate and doctor can warn.
func TestSQLiteJournalMode(t *testing.T) {
	for _, tt := range []struct {
		url, mode string
		notWAL    bool
	}{
		{"sqlite:reins.db", "WAL", false},
		{"sqlite:reins.db?_pragma=journal_mode(wal)", "WAL", false},
		{"sqlite:reins.db?_pragma=journal_mode(MEMORY)", "MEMORY", true},
		{"reins.db?_pragma=Journal_Mode%3Ddelete", "DELETE", true},
		{"postgres://u@h/db", "", false},
	} {
		mode, notWAL, err := migrations.SQLiteJournalMode(tt.url)
		if err != nil || mode != tt.mode || notWAL != tt.notWAL {
			t.Errorf("SQLiteJournalMode(%q) = %q, %v, %v; want %q, %v", tt.url, mode, notWAL, err, tt.mode, tt.notWAL)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"ErrMySQL", "mysql://root@localhost/reins", `unsupported database URL scheme "mysql"`},
		{"ErrHTTP", "http://example.com/db", `unsupported database URL scheme "http"`},
		{"ErrEmpty", "  ", "empty database URL"},
		{"ErrSQLiteNoPath", "sqlite:", "without a file path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := migrations.ParseURL(tt.url)
			if err == nil {
				t.Fatalf("ParseURL(%q): no error", tt.url)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.name != "ErrSQLiteNoPath" && !strings.Contains(err.Error(), "postgres://") {
				t.Errorf("error %q does not list the schemes that work", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"Password", "postgres://postgres:hunter2@127.0.0.1:5432/reins", "postgres://postgres@127.0.0.1:5432/reins"},
		{"NoPassword", "postgres://postgres@127.0.0.1:5432/reins", "postgres://postgres@127.0.0.1:5432/reins"},
		{"KeepsSSLMode", "postgres://u:p@db:5432/reins?sslmode=disable", "postgres://u@db:5432/reins?sslmode=disable"},
		{"SecretQuery", "postgresql://db/reins?password=hunter2&sslmode=require", "postgresql://db/reins?sslmode=require"},
		{"SQLitePath", "sqlite:/var/lib/reins.db", "sqlite:/var/lib/reins.db"},
		{"BarePath", "reins.db", "reins.db"},
		{"Unparseable", "postgres://u:hun%zzter2@db/reins", "postgres://(unparseable URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := migrations.Redact(tt.url); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestConnectErrUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	_, _, err := migrations.Connect(ctx, "postgres://postgres:s3cr3t-pw@127.0.0.1:1/reins?sslmode=disable")
	if err == nil {
		t.Fatal("Connect to a closed port: no error")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error %q does not name the host", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error %q shows the password", err)
	}
}

func TestConnectErrSQLiteNoDirectory(t *testing.T) {
	u := "sqlite:" + t.TempDir() + "/missing/dir/reins.db"
	_, _, err := migrations.Connect(context.Background(), u)
	if err == nil || !strings.Contains(err.Error(), "missing/dir/reins.db") || !strings.Contains(err.Error(), "directory exists") {
		t.Errorf("Connect(%s) error = %v, want one naming the file and the fix", u, err)
	}
}

func TestConnectErrUnknownScheme(t *testing.T) {
	_, _, err := migrations.Connect(context.Background(), "mysql://root:pw@localhost/reins")
	if err == nil || !strings.Contains(err.Error(), "sqlite:PATH") {
		t.Errorf("Connect(mysql://…) error = %v, want one listing the schemes that work", err)
	}
}

// each runs fn on an empty database of each dialect, connected, unmigrated.
func each(t *testing.T, fn func(t *testing.T, db *sqlx.DB, d migrations.Dialect)) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			u := dbtest.EmptyURL(t, d)
			db, got, err := migrations.Connect(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if got != d {
				t.Fatalf("Connect(%s) dialect = %q, want %q", migrations.Redact(u), got, d)
			}
			fn(t, db, d)
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		ctx := context.Background()
		if pending, err := migrations.Pending(ctx, db, d); err != nil || !pending {
			t.Fatalf("Pending before migrating = %v, %v; want true", pending, err)
		}
		n, err := migrations.Migrate(ctx, db, d)
		if err != nil || n == 0 {
			t.Fatalf("first Migrate = %d, %v; want every migration applied", n, err)
		}
		before := schema(t, db, d)
		n, err = migrations.Migrate(ctx, db, d)
		if err != nil || n != 0 {
			t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
		}
		if after := schema(t, db, d); !equalSchema(before, after) {
			t.Errorf("second Migrate changed the schema:\nbefore %v\nafter  %v", before, after)
		}
		if pending, err := migrations.Pending(ctx, db, d); err != nil || pending {
			t.Errorf("Pending after migrating = %v, %v; want false", pending, err)
		}
	})
}

// TestMigrateConcurrent starts replicas together: the advisory lock (a
// process-wide mutex on SQLite) lets each migration apply once.
func TestMigrateConcurrent(t *testing.T) {
	each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		var wg sync.WaitGroup
		applied := make([]int, 4)
		errs := make([]error, 4)
		for i := range applied {
			wg.Go(func() { applied[i], errs[i] = migrations.Migrate(context.Background(), db, d) })
		}
		wg.Wait()
		total := 0
		for i := range applied {
			if errs[i] != nil {
				t.Errorf("replica %d: %v", i, errs[i])
			}
			total += applied[i]
		}
		want := countFiles(t, d)
		if total != want {
			t.Errorf("replicas applied %d migrations in all, want %d (%v)", total, want, applied)
		}
	})
}

func countFiles(t *testing.T, d migrations.Dialect) int {
	t.Helper()
	fsys, err := migrations.FS(d)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

// TestSchemaParity keeps the dialects in step: the same tables with the same
// columns, so the store's SQL means the same on both.
func TestSchemaParity(t *testing.T) {
	if os.Getenv(dbtest.EnvPostgres) == "" {
		t.Skip(dbtest.EnvPostgres + " not set: the parity test needs both dialects")
	}
	lite := schema(t, dbtest.SQLite(t), migrations.SQLite)
	pg := schema(t, dbtest.Postgres(t), migrations.Postgres)
	if len(lite) < 13 {
		t.Fatalf("SQLite schema has %d tables, want at least 13: %v", len(lite), lite)
	}
	for table, cols := range lite {
		if !slices.Equal(cols, pg[table]) {
			t.Errorf("table %s: SQLite columns %v, PostgreSQL %v", table, cols, pg[table])
		}
	}
	for table := range pg {
		if _, ok := lite[table]; !ok {
			t.Errorf("table %s exists on PostgreSQL only", table)
		}
	}
}

// schema returns each table's columns, sorted, without SQLite's own tables.
func schema(t *testing.T, db *sqlx.DB, d migrations.Dialect) map[string][]string {
	t.Helper()
	var rows []struct {
		Table  string `db:"table_name"`
		Column string `db:"column_name"`
	}
	query := `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'`
	if d == migrations.SQLite {
		query = `SELECT m.name AS table_name, p.name AS column_name
			FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
	}
	if err := db.Select(&rows, query); err != nil {
		t.Fatalf("read %s schema: %v", d, err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.Table] = append(out[r.Table], r.Column)
	}
	for _, cols := range out {
		slices.Sort(cols)
	}
	return out
}

func equalSchema(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestOpenOK(t *testing.T) {
	u := dbtest.EmptyURL(t, migrations.SQLite)
	db, d, err := migrations.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.Get(&mode, `PRAGMA journal_mode`); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := db.Get(&fk, `PRAGMA foreign_keys`); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if pending, err := migrations.Pending(context.Background(), db, d); err != nil || pending {
		t.Errorf("Pending after Open = %v, %v; want false", pending, err)
	}
}

// released are the migration versions of the reins releases users run. A
// database migrated by one holds exactly these, so a new migration must be
// numbered above every one of them: goose refuses to apply a file numbered
// below the database's version ("missing (out-of-order) migration"), and the
// upgrade would stop at `reins serve`. Add a version here once it ships.
var released = []int64{1, 2, 4, 6, 7}

func TestNewMigrationsAreNumberedAboveTheReleasedOnes(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.Postgres, migrations.SQLite} {
		fsys, err := migrations.FS(d)
		if err != nil {
			t.Fatal(err)
		}
		names, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			v, err := goose.NumericComponent(name)
			if err != nil {
				t.Fatalf("%s/%s: %v", d, name, err)
			}
			if !slices.Contains(released, v) && v < slices.Max(released) {
				t.Errorf("%s/%s is numbered %d, below released version %d: a released database cannot apply it; renumber it above %d",
					d, name, v, slices.Max(released), slices.Max(released))
			}
		}
	}
}

// A database left by the last release (only the released files applied) is
// brought up to date by this one.
func TestUpgradeFromTheReleasedSchema(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			if d == migrations.Postgres && os.Getenv("REINS_TEST_POSTGRES_URL") == "" {
				t.Skip("REINS_TEST_POSTGRES_URL not set")
			}
			ctx := context.Background()
			db := dbtest.MigratedOnly(t, d, func(v int64) bool { return slices.Contains(released, v) })
			n, err := migrations.Migrate(ctx, db, d)
			if err != nil {
				t.Fatalf("upgrade a released database: %v", err)
			}
			all, err := migrations.FS(d)
			if err != nil {
				t.Fatal(err)
			}
			names, _ := fs.Glob(all, "*.sql")
			want := 0
			for _, name := range names {
				if v, _ := goose.NumericComponent(name); !slices.Contains(released, v) {
					want++
				}
			}
			if n != want {
				t.Errorf("upgrade applied %d migrations, want %d", n, want)
			}
		})
	}
}
