// Package migrations owns the reins database schema: the SQL migrations for
// PostgreSQL and SQLite, embedded in the binary, and the code that opens a
// database from its URL and brings it up to date with goose.
//
// The two dialects carry the same tables and columns (a test compares them);
// every constraint is explained in the SQL itself.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	_ "github.com/lib/pq"  // registers the "postgres" driver
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names a supported database.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// supported is shown whenever a URL is not understood, so the user sees what works.
const supported = `postgres://USER@HOST:PORT/DB, postgresql://…, sqlite:PATH, sqlite://PATH, file:PATH or a bare file path`

// sqliteParams are added to every SQLite DSN unless the URL sets them. The
// driver runs the pragmas on every connection it opens, so each connection of
// the pool (and of migrations, and of a CLI command) gets them:
//   - busy_timeout: a writer from another process (reins migrate while serving)
//     waits for the lock instead of failing with "database is locked";
//   - WAL: readers never block the writer nor the writer them;
//   - synchronous FULL: in WAL mode every commit fsyncs the WAL before it
//     returns, so whatever reins acknowledged (a webhook's 2xx, an OTLP 200,
//     a halt, a flag change) survives a power loss, not only a crash of reins.
//     The writers that share a transaction (alert intake, OTLP intake, Slack
//     single-use marks) share its fsync. An operator may trade that for speed
//     with _pragma=synchronous(NORMAL) in the URL (docs/deploy.md), which
//     `reins validate --strict` and `reins doctor` warn about;
//   - foreign_keys: SQLite enforces them only when asked, per connection;
//   - _txlock=immediate: a transaction takes the write lock at BEGIN, so two
//     transactions that read then write cannot deadlock on the upgrade.
var sqliteParams = [][2]string{
	{"_pragma", "busy_timeout(5000)"},
	{"_pragma", "journal_mode(WAL)"},
	{"_pragma", "synchronous(FULL)"},
	{"_pragma", "foreign_keys(1)"},
	{"_txlock", "immediate"},
}

// SQLiteSynchronous returns the synchronous level a SQLite URL runs with
// ("FULL" unless the URL sets another, upper case as the URL spelt it) and
// whether it is weaker than FULL, that is, whether a power loss or a kernel
// panic may roll back commits reins already acknowledged. A PostgreSQL URL
// returns "", false: its durability is the server's (fsync,
// synchronous_commit).
func SQLiteSynchronous(rawURL string) (level string, weak bool, err error) {
	level, sqlite, err := sqlitePragma(rawURL, "synchronous", "FULL")
	if err != nil || !sqlite {
		return "", false, err
	}
	switch level {
	case "FULL", "EXTRA", "2", "3":
		return level, false, nil
	}
	return level, true, nil
}

// SQLiteJournalMode returns the journal mode a SQLite URL runs with ("WAL"
// unless the URL sets another, upper case) and whether it is not WAL. What
// the store promises relies on the write-ahead log: commits reach the disk in
// order, so the Slack request marks committed without an fsync go to disk
// with the next durable commit; and MEMORY or OFF do not even survive a
// crash of reins (a transaction cut short can corrupt the file). A
// PostgreSQL URL returns "", false.
func SQLiteJournalMode(rawURL string) (mode string, notWAL bool, err error) {
	mode, sqlite, err := sqlitePragma(rawURL, "journal_mode", "WAL")
	if err != nil || !sqlite {
		return "", false, err
	}
	return mode, mode != "WAL", nil
}

// sqlitePragma returns the argument, upper case, of the last _pragma name
// of a SQLite URL (def when it sets none), and whether the URL is SQLite.
func sqlitePragma(rawURL, name, def string) (arg string, sqlite bool, err error) {
	d, dsn, err := ParseURL(rawURL)
	if err != nil || d != SQLite {
		return "", false, err
	}
	_, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", false, fmt.Errorf("SQLite URL has a malformed query: %w", err)
	}
	arg = def
	for _, p := range q["_pragma"] {
		if n, a := pragmaName(p); n == name {
			arg = strings.ToUpper(a)
		}
	}
	return arg, true, nil
}

// pragmaName splits a _pragma parameter, "name(arg)" or "name=arg" as the
// driver accepts both, into its lower-case name and its argument.
func pragmaName(p string) (name, arg string) {
	i := strings.IndexAny(p, "(=")
	if i < 0 {
		return strings.ToLower(strings.TrimSpace(p)), ""
	}
	name, arg = p[:i], strings.TrimSuffix(strings.TrimSpace(p[i+1:]), ")")
	return strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(arg)
}

// ParseURL tells the dialect of a database URL and returns the DSN for its
// driver: "postgres://" and "postgresql://" are PostgreSQL; "sqlite:PATH",
// "sqlite://PATH", "file:PATH" and a bare path are SQLite.
func ParseURL(rawURL string) (Dialect, string, error) {
	u := strings.TrimSpace(rawURL)
	if u == "" {
		return "", "", fmt.Errorf("empty database URL: use one of %s", supported)
	}
	scheme, rest, hasScheme := splitScheme(u)
	switch {
	case scheme == "postgres" || scheme == "postgresql":
		return Postgres, postgresDSN(u), nil
	case scheme == "sqlite":
		return sqliteDSN(strings.TrimPrefix(rest, "//"), false)
	case scheme == "file":
		return sqliteDSN(rest, true)
	case hasScheme:
		return "", "", fmt.Errorf("unsupported database URL scheme %q: use one of %s", scheme, supported)
	}
	return sqliteDSN(u, false)
}

// splitScheme returns the URL scheme in lower case. A Windows drive letter
// ("C:\db") or a path with a colon further on is not a scheme.
func splitScheme(u string) (scheme, rest string, ok bool) {
	i := strings.Index(u, ":")
	if i < 2 {
		return "", u, false
	}
	for j, r := range u[:i] {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (j == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return "", u, false
		}
	}
	scheme = strings.ToLower(u[:i])
	rest = u[i+1:]
	// "sqlite:" and "file:" need no "//"; anything else is a scheme only when
	// written as one, so "notes:2026.db" stays a file name.
	if scheme != "sqlite" && scheme != "file" && !strings.HasPrefix(rest, "//") {
		return "", u, false
	}
	return scheme, rest, true
}

// postgresDSN turns on lib/pq's binary_parameters unless the URL sets it:
// each statement with arguments then costs one round trip (parse, bind and
// execute sent together) instead of two (prepare, wait, execute), which
// nearly halves the latency of a multi-statement ingest transaction.
func postgresDSN(u string) string {
	if strings.Contains(u, "binary_parameters=") {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "binary_parameters=yes"
}

// sqliteDSN adds the connection settings to path (keeping the caller's own
// query parameters, which win). A "file:" URI is handed to SQLite as such.
func sqliteDSN(path string, fileURI bool) (Dialect, string, error) {
	path, query, _ := strings.Cut(path, "?")
	if path == "" {
		return "", "", fmt.Errorf("SQLite URL without a file path: use sqlite:PATH, e.g. sqlite:reins.db")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", fmt.Errorf("SQLite URL %q has a malformed query: %w", path, err)
	}
	pragmas := map[string]bool{}
	for _, p := range q["_pragma"] {
		name, _ := pragmaName(p)
		pragmas[name] = true
	}
	params := make([]string, 0, len(sqliteParams)+len(q))
	for _, kv := range sqliteParams {
		name, _, _ := strings.Cut(kv[1], "(")
		if kv[0] == "_pragma" && pragmas[name] || kv[0] != "_pragma" && q.Has(kv[0]) {
			continue
		}
		params = append(params, kv[0]+"="+url.QueryEscape(kv[1]))
	}
	if query != "" {
		params = append(params, query)
	}
	if fileURI {
		path = "file:" + path
	}
	return SQLite, path + "?" + strings.Join(params, "&"), nil
}

// Redact returns the URL without its password or secret query parameters,
// for messages and logs: postgres://postgres@127.0.0.1:5432/reins.
func Redact(rawURL string) string {
	scheme, _, ok := splitScheme(strings.TrimSpace(rawURL))
	if !ok || scheme == "sqlite" || scheme == "file" {
		return rawURL // a file path holds no secret
	}
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		// The parse error quotes the URL, password included: say nothing of it.
		return scheme + "://(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for k := range q {
		if secretParam(k) {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// secretParam says whether a query parameter may hold a credential.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "passwd", "pass", "secret", "token", "sslkey", "sslpassword"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// password returns the password in rawURL, "" when none, so errors can be
// scrubbed of it whatever the driver put in them.
func password(rawURL string) string {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// Connect opens the database named by url and checks that it answers. It
// does not migrate. Errors name the database without its password.
func Connect(ctx context.Context, rawURL string) (*sqlx.DB, Dialect, error) {
	d, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, "", err
	}
	db, err := sqlx.Open(string(d), dsn)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", Redact(rawURL), err)
	}
	configurePool(db, d, dsn)
	if _, ok := ctx.Deadline(); !ok {
		// An unreachable host would otherwise hang start-up for the OS
		// connect timeout, minutes, before saying anything.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		msg := err.Error()
		if p := password(rawURL); p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		hint := "check the host, port and credentials in REINS_DATABASE_URL"
		if d == SQLite {
			hint = "check that the directory exists and reins may write there"
		}
		return nil, "", fmt.Errorf("connect to %s database %s: %s (%s)", d, Redact(rawURL), msg, hint)
	}
	return db, d, nil
}

// PostgresMaxConns is the PostgreSQL pool of a store opened here, unless
// REINS_DATABASE_MAX_CONNS says otherwise (cmd/reins). Test binaries lower it
// (dbtest.Main): their parallel tests each open a store on one server.
var PostgresMaxConns = 16

// configurePool sizes the connection pool. SQLite writes one transaction at
// a time whatever the pool; the store serialises its writers in the process
// (so they queue instead of sleeping in the busy handler), and the extra
// connections serve readers, which WAL lets run beside the writer.
func configurePool(db *sqlx.DB, d Dialect, dsn string) {
	switch d {
	case SQLite:
		conns := 8
		if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
			conns = 1 // each connection would see its own empty in-memory database
		}
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		db.SetConnMaxLifetime(0) // a new connection re-runs the pragmas: keep them
	case Postgres:
		db.SetMaxOpenConns(PostgresMaxConns)
		db.SetMaxIdleConns(PostgresMaxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
}

// Migrate applies the pending migrations and returns how many it applied. On
// PostgreSQL it holds a session advisory lock meanwhile, so replicas starting
// together apply each migration once.
func Migrate(ctx context.Context, db *sqlx.DB, d Dialect) (int, error) {
	if d == SQLite {
		// goose has no lock for SQLite and reads the applied versions before
		// its transaction: two callers would both apply version 1. One
		// process owns a SQLite file, so a process-wide mutex suffices.
		sqliteMigrate.Lock()
		defer sqliteMigrate.Unlock()
	}
	p, err := provider(db, d)
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate %s database: %w", d, err)
	}
	return len(res), nil
}

var sqliteMigrate sync.Mutex

// Pending reports whether the database lacks migrations this binary has.
func Pending(ctx context.Context, db *sqlx.DB, d Dialect) (bool, error) {
	p, err := provider(db, d)
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check %s migrations: %w", d, err)
	}
	return pending, nil
}

// Open connects to the database named by url and applies pending migrations.
func Open(ctx context.Context, rawURL string) (*sqlx.DB, Dialect, error) {
	db, d, err := Connect(ctx, rawURL)
	if err != nil {
		return nil, "", err
	}
	if _, err := Migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, d, nil
}

// provider builds a goose provider over the embedded files of dialect d.
func provider(db *sqlx.DB, d Dialect) (*goose.Provider, error) {
	if db == nil {
		return nil, errors.New("migrate: no database")
	}
	fsys, err := FS(d)
	if err != nil {
		return nil, err
	}
	// Only the embedded SQL: no Go migrations registered elsewhere sneak in.
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	gd := goose.DialectSQLite3
	if d == Postgres {
		gd = goose.DialectPostgres
		// Probe every second for up to five minutes: a replica that starts
		// beside another waits for its migration instead of failing.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.DB, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("load %s migrations: %w", d, err)
	}
	return p, nil
}

// FS returns the migration files of dialect d.
func FS(d Dialect) (fs.FS, error) {
	switch d {
	case Postgres, SQLite:
		return fs.Sub(files, string(d))
	}
	return nil, fmt.Errorf("unknown dialect %q: want %q or %q", d, Postgres, SQLite)
}
