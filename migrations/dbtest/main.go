package dbtest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/reins-oss/reins/migrations"
)

// skipped counts the tests of this test binary skipped for want of PostgreSQL.
var skipped atomic.Int64

// Main runs a package's tests (call it from TestMain: os.Exit(dbtest.Main(m)))
// and, when PostgreSQL tests were skipped, says so in one line where a plain
// `go test ./...` shows it. go test shows nothing of a passing package but
// its "ok" line, whatever the test wrote to stdout or stderr, so the line
// goes to the terminal (/dev/tty) when there is one, else to stderr (seen
// with -v, or when the package fails). A cached result replays nothing:
// `go test -count=1 ./...` runs again.
func Main(m *testing.M) int {
	// Parallel tests, each with a store of its own, and child reins
	// processes share one server of 100 connections.
	migrations.PostgresMaxConns = 8
	code := m.Run()
	if n := skipped.Load(); n > 0 {
		var w io.Writer = os.Stderr
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			w = tty
		}
		fmt.Fprintf(w, "%s: %d PostgreSQL tests skipped: %s not set (README.md, Two commands)\n", packageDir(), n, EnvPostgres)
	}
	return code
}

// packageDir is the package's directory relative to the module root (go
// test runs a package's tests in its directory).
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return "./" + filepath.ToSlash(rel)
			}
			return wd
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}
