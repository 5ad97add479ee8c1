// Package sqlstore is the one implementation of incidents.Store, on
// PostgreSQL and SQLite through sqlx. Queries are plain SQL written with "?"
// placeholders and rebound for the dialect; the schema lives in migrations.
//
// Every method of incidents.Queries works both on the database and inside
// Store.InTx. On SQLite, which writes one transaction at a time, the store
// queues its writers on a gate in the process: a queued writer starts the
// moment the previous one commits, where SQLite's busy handler would sleep
// for milliseconds between attempts.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/migrations"
)

var (
	_ incidents.Store = (*Store)(nil)
	_ outbox.Store    = (*Store)(nil) // the outbox's role, which incidents.Store includes
)

// Store is the persistent store. Its Queries methods run on the database; use
// InTx to compose several into one transaction.
type Store struct {
	queries
	db          *sqlx.DB
	d           migrations.Dialect
	gate        chan struct{} // SQLite: the one writer's token
	lobby       chan struct{} // SQLite: where ordinary writers wait their turn at the gate
	locks       *lockSet      // SQLite: process-local TryLock
	stmts       sync.Map      // query text -> *sqlx.Stmt prepared on db
	preparing   sync.Map      // query text -> true while a goroutine prepares it
	bulkQueries sync.Map      // bulkShape -> query text
	marks       markGroup     // group commit of Slack single-use marks
	syncLevel   atomic.Int32  // SQLite: the connections' synchronous level, -1 until read
	markStmts   driverStmts   // SQLite: the mark inserts, prepared per connection
}

// New returns a Store on db, which must be migrated, of dialect d.
func New(db *sqlx.DB, d migrations.Dialect) *Store {
	s := &Store{db: db, d: d}
	s.syncLevel.Store(-1)
	if d == migrations.SQLite {
		sh := shared(db)
		s.gate, s.lobby, s.locks = sh.gate, sh.lobby, sh.locks
	}
	s.queries = queries{s: s, x: db}
	return s
}

// sqliteShared is per database, not per Store, so two Stores on one *sqlx.DB
// (a test, a CLI command beside the server) still queue on one gate.
type sqliteShared struct {
	gate  chan struct{}
	lobby chan struct{}
	locks *lockSet
}

var (
	sharedMu sync.Mutex
	sharedBy = map[*sqlx.DB]*sqliteShared{}
)

func shared(db *sqlx.DB) *sqliteShared {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	sh := sharedBy[db]
	if sh == nil {
		sh = &sqliteShared{gate: make(chan struct{}, 1), lobby: make(chan struct{}, 1),
			locks: &lockSet{held: map[string]*sync.Mutex{}}}
		sharedBy[db] = sh
	}
	return sh
}

// enter waits for the SQLite write gate; the returned func leaves it.
// On PostgreSQL it does nothing: the server handles concurrent writers.
//
// Ordinary writers pass a lobby first, so at most one of them waits at the
// gate: an urgent writer (urgent(ctx): a breach on its way to a halt) skips
// the lobby and waits behind at most that one and the writer inside,
// however many intake writes are queued.
func (s *Store) enter(ctx context.Context) (func(), error) {
	if s.gate == nil {
		return func() {}, nil
	}
	if ctx.Value(urgentKey{}) == nil {
		select {
		case s.lobby <- struct{}{}:
			defer func() { <-s.lobby }()
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the database writer: %w", ctx.Err())
		}
	}
	select {
	case s.gate <- struct{}{}:
		return func() { <-s.gate }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the database writer: %w", ctx.Err())
	}
}

type urgentKey struct{}

// urgent marks ctx's writes as jumping the queue of ordinary SQLite writers.
func urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// Urgent marks the writes made with ctx as on the way to a halt: on SQLite
// they pass the intake's queued writes (cmd/reins wraps the guard's calls).
func Urgent(ctx context.Context) context.Context { return urgent(ctx) }

// InTx runs fn in one transaction, committed when fn returns nil and rolled
// back otherwise (or when fn panics). It uses the default isolation, READ
// COMMITTED on PostgreSQL, which the upserts of this store rely on.
func (s *Store) InTx(ctx context.Context, fn func(q incidents.Queries) error) error {
	return s.inTx(ctx, func(q *queries) error { return fn(q) })
}

func (s *Store) inTx(ctx context.Context, fn func(q *queries) error) (err error) {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return wrap(err, "begin transaction")
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(&queries{s: s, x: tx, tx: tx}); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return wrap(err, "commit transaction")
	}
	return nil
}

// TryLock runs fn while holding the named lock: a PostgreSQL session advisory
// lock on a connection of its own, or a mutex in this process on SQLite (one
// process owns a SQLite file). ran is false when someone else holds it.
func (s *Store) TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error) {
	if s.d == migrations.SQLite {
		mu := s.locks.get(name)
		if !mu.TryLock() {
			return false, nil
		}
		defer mu.Unlock()
		return true, fn(ctx)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, wrap(err, "lock %q: get connection", name)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, name).Scan(&got); err != nil {
		return false, wrap(err, "lock %q", name)
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even when ctx is cancelled; if that fails, the connection
		// must not go back to the pool still holding the lock.
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, name)
		if uerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return true, fn(ctx)
}

// lockSet is the named mutexes behind TryLock on SQLite.
type lockSet struct {
	mu   sync.Mutex
	held map[string]*sync.Mutex
}

func (l *lockSet) get(name string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.held[name]
	if m == nil {
		m = &sync.Mutex{}
		l.held[name] = m
	}
	return m
}

// Ping says whether the database answers and has every migration applied.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return wrap(err, "ping %s database", s.d)
	}
	pending, err := migrations.Pending(ctx, s.db, s.d)
	if err != nil {
		return wrap(err, "ping %s database", s.d)
	}
	if pending {
		return &incidents.Error{Code: incidents.EUNAVAILABLE,
			Message: "The database has pending migrations: run `reins migrate` or restart `reins serve`."}
	}
	return nil
}

// queries implements incidents.Queries on the database or on a transaction.
type queries struct {
	s  *Store
	x  sqlx.ExtContext
	tx *sqlx.Tx // nil on the database
}

// write runs fn, which writes. Inside a transaction it simply runs. On the
// database, SQLite writers pass the gate; when fn issues several statements
// that must commit together (atomic), it gets a transaction of its own.
func (q *queries) write(ctx context.Context, atomic bool, fn func(q *queries) error) error {
	if q.tx != nil {
		return fn(q)
	}
	if atomic {
		return q.s.inTx(ctx, fn)
	}
	leave, err := q.s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	return fn(q)
}

// forUpdate locks the rows a transaction reads before it changes them, so two
// transactions changing one incident on PostgreSQL queue instead of one
// overwriting the other's change. SQLite transactions are serialised anyway.
// NO KEY UPDATE, the lock an UPDATE of non-key columns takes, because it does
// not conflict with the KEY SHARE lock that inserting an alert or event takes
// on its incident: FOR UPDATE there deadlocks concurrent intakes.
func (q *queries) forUpdate() string {
	if q.tx != nil && q.s.d == migrations.Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

// stmt returns query, rebound for the dialect, as a statement prepared once
// per connection and reused: SQLite then skips parsing and PostgreSQL
// planning on every call, which is a fifth of an ingest's cost. It returns
// nil when query is not prepared yet inside a transaction: preparing on the
// database there would take a second connection, and transactions that all
// wait for one (32 senders, 32 connections) would wait forever. The caller
// then runs the text on the transaction and a goroutine prepares it for
// next time as soon as a connection is free.
func (q *queries) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if cached, ok := q.s.stmts.Load(query); ok {
		st := cached.(*sqlx.Stmt)
		if q.tx != nil {
			return q.tx.StmtxContext(ctx, st), nil
		}
		return st, nil
	}
	if q.tx != nil {
		if _, busy := q.s.preparing.LoadOrStore(query, true); !busy {
			go func() {
				defer q.s.preparing.Delete(query)
				_, _ = q.s.prepare(query) // a failure leaves it unprepared: the next miss tries again
			}()
		}
		return nil, nil
	}
	return q.s.prepare(query)
}

// prepare prepares query on the database and caches it; one caller wins a
// race and the others' statements are closed.
func (s *Store) prepare(query string) (*sqlx.Stmt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := sqlx.PreparexContext(ctx, s.db, s.db.Rebind(query))
	if err != nil {
		return nil, err
	}
	if cached, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return cached.(*sqlx.Stmt), nil
	}
	return st, nil
}

func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	} else if st == nil {
		return q.x.ExecContext(ctx, q.x.Rebind(query), args...)
	}
	return st.ExecContext(ctx, args...)
}

func (q *queries) get(ctx context.Context, dst any, query string, args ...any) error {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return err
	} else if st == nil {
		return sqlx.GetContext(ctx, q.x, dst, q.x.Rebind(query), args...)
	}
	return st.GetContext(ctx, dst, args...)
}

// query runs query for a caller that scans the rows itself.
func (q *queries) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	} else if st == nil {
		return q.x.QueryContext(ctx, q.x.Rebind(query), args...)
	}
	return st.QueryContext(ctx, args...)
}

// writeRows runs query, a write that returns rows, passing the gate as
// write does, and calls scan for each row.
func (q *queries) writeRows(ctx context.Context, query string, args []any, scan func(rows *sql.Rows) error) error {
	return q.write(ctx, false, func(q *queries) error {
		rows, err := q.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

func (q *queries) sel(ctx context.Context, dst any, query string, args ...any) error {
	st, err := q.stmt(ctx, query)
	if err != nil {
		return err
	} else if st == nil {
		return sqlx.SelectContext(ctx, q.x, dst, q.x.Rebind(query), args...)
	}
	return st.SelectContext(ctx, dst, args...)
}

// mustAffect turns "no row changed" into ENOTFOUND for what.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "%s: rows affected", what)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

func notFound(what string) error {
	return &incidents.Error{Code: incidents.ENOTFOUND, Message: fmt.Sprintf("No %s.", what)}
}

// wrap adds context to a driver error. Errors a retry may cure (serialisation
// failure, deadlock, SQLite busy) are marked twice for callers that import no
// driver: a Retryable() bool method, and an EUNAVAILABLE *incidents.Error for
// ErrorCode. The driver error stays reachable through errors.As.
func wrap(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if transient(err) {
		busy := &incidents.Error{Code: incidents.EUNAVAILABLE, Message: "The database is busy; try again."}
		return fmt.Errorf("%s: %w (%w)", msg, busy, retryableError{err})
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// retryableError marks an error that trying the transaction again may cure.
type retryableError struct{ err error }

func (e retryableError) Error() string   { return e.err.Error() }
func (e retryableError) Unwrap() error   { return e.err }
func (e retryableError) Retryable() bool { return true }

// transient says whether trying the transaction again may succeed.
func transient(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}

// foreignKey says whether err is a foreign-key violation: the row refers to
// an incident (or checklist) that does not exist.
func foreignKey(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == 787 // SQLITE_CONSTRAINT_FOREIGNKEY
}

// unique says whether err is a unique-constraint violation.
func unique(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == 2067 || se.Code() == 1555) // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
}

// insertErr maps a failed insert of something about an incident.
func insertErr(err error, incidentID int64, format string, args ...any) error {
	if foreignKey(err) {
		return notFound(fmt.Sprintf("incident #%d", incidentID))
	}
	return wrap(err, format, args...)
}
