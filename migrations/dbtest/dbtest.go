// Package dbtest gives each test a fresh, migrated database: a SQLite file
// in the test's temporary directory (always), and a PostgreSQL database of
// its own on the server named by REINS_TEST_POSTGRES_URL (skipped, saying
// why, when that is unset). Databases are removed when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"

	"github.com/reins-oss/reins/migrations"
)

// EnvPostgres names the variable holding the PostgreSQL server URL for tests,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgres = "REINS_TEST_POSTGRES_URL"

// SQLite returns a migrated SQLite database in a fresh file, closed at the end.
func SQLite(t testing.TB) *sqlx.DB {
	t.Helper()
	return open(t, SQLiteURL(t))
}

// SQLiteURL returns the URL of a migrated SQLite database in a fresh file.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	u := EmptyURL(t, migrations.SQLite)
	migrate(t, u)
	return u
}

// Postgres returns a migrated PostgreSQL database of the test's own, dropped
// at the end. It skips the test when REINS_TEST_POSTGRES_URL is unset.
func Postgres(t testing.TB) *sqlx.DB {
	t.Helper()
	return open(t, PostgresURL(t))
}

// PostgresURL creates a migrated PostgreSQL database reins_test_<random>,
// dropped at the end, and returns its URL, for tests that start the binary.
// It skips the test when REINS_TEST_POSTGRES_URL is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := emptyPostgres(t)
	migrate(t, u)
	return u
}

// EmptyURL returns the URL of a fresh database of dialect d with no
// migration applied, for tests of migrating itself.
func EmptyURL(t testing.TB, d migrations.Dialect) string {
	t.Helper()
	if d == migrations.Postgres {
		return emptyPostgres(t)
	}
	return "sqlite:" + filepath.Join(tempDir(t), "reins.db")
}

// tempDir is t.TempDir for a SQLite database: a statement the store
// prepares in the background may still hold a connection when the test
// ends, and its closing removes the -wal and -shm files a moment after the
// database was closed, which t.TempDir's cleanup reports as a failure.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "reins-test-")
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err := os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("dbtest: could not remove %s", dir)
	})
	return dir
}

func emptyPostgres(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvPostgres)
	if server == "" {
		skipped.Add(1)
		t.Skip(EnvPostgres + " not set: skipping PostgreSQL tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, _, err := migrations.Connect(ctx, server)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	name := "reins_test_" + random()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create database %s on %s: %v", name, migrations.Redact(server), err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// WITH (FORCE) ends connections a test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("dbtest: %s is not a URL: %s", EnvPostgres, migrations.Redact(server))
	}
	u.Path = "/" + name
	return u.String()
}

// Each runs fn as subtest "sqlite" and as subtest "postgres", each with a
// fresh migrated database. The PostgreSQL subtest skips when
// REINS_TEST_POSTGRES_URL is unset.
func Each(t *testing.T, fn func(t *testing.T, db *sqlx.DB, d migrations.Dialect)) {
	t.Helper()
	t.Run(string(migrations.SQLite), func(t *testing.T) { fn(t, SQLite(t), migrations.SQLite) })
	t.Run(string(migrations.Postgres), func(t *testing.T) { fn(t, Postgres(t), migrations.Postgres) })
}

func migrate(t testing.TB, u string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, _, err := migrations.Open(ctx, u)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	db.Close()
}

func open(t testing.TB, u string) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, _, err := migrations.Connect(ctx, u)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func random() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// MigratedOnly returns a fresh database of dialect d to which only the
// migrations whose version keep accepts were applied: the schema an earlier
// release left, for tests of what a later migration does to its data. The
// test then runs migrations.Migrate itself.
func MigratedOnly(t testing.TB, d migrations.Dialect, keep func(version int64) bool) *sqlx.DB {
	t.Helper()
	db, _, err := migrations.Connect(context.Background(), EmptyURL(t, d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	MigrateOnly(t, db, d, keep)
	return db
}

// MigrateOnly applies to db those migrations not yet applied whose version
// keep accepts.
func MigrateOnly(t testing.TB, db *sqlx.DB, d migrations.Dialect, keep func(version int64) bool) {
	t.Helper()
	all, err := migrations.FS(d)
	if err != nil {
		t.Fatal(err)
	}
	kept := fstest.MapFS{}
	names, err := fs.Glob(all, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			t.Fatalf("%s/%s: %v", d, name, err)
		}
		if !keep(v) {
			continue
		}
		b, err := fs.ReadFile(all, name)
		if err != nil {
			t.Fatal(err)
		}
		kept[name] = &fstest.MapFile{Data: b}
	}
	gd := goose.DialectSQLite3
	if d == migrations.Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db.DB, kept, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatalf("apply the kept migrations: %v", err)
	}
}
