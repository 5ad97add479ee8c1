package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/groupcommit"
	"github.com/reins-oss/reins/migrations"
)

// Group commit for Slack's single-use marks (FirstRequest). Every signed
// request Slack sends is marked once before it is acted on; as a write of
// its own each mark cost a commit (and, on SQLite, a pass of the writer gate
// and an fsync), which held slash-command acks to a third of what verifying
// the signature alone allows (issue 25). Marks that arrive while another
// batch is being written queue and go together in the next statement: one
// INSERT … ON CONFLICT DO NOTHING RETURNING key for up to maxMarkBatch keys,
// one commit. The database's primary key still decides "first time?", so a
// replay reaching another replica is dropped as before.

// maxMarkBatch caps the keys of one statement.
const maxMarkBatch = 64

// markGroup is the lanes of one Store: a key always goes to the same lane,
// so two batches of this process never hold one key. The zero value is
// ready to use.
type markGroup struct {
	lanes groupcommit.Lanes[*markCall]
}

// markCall is one FirstRequest waiting for its key to be written.
type markCall struct {
	ctx     context.Context
	key     string
	expires time.Time

	first bool  // set with err before the batch is answered
	err   error // set before the batch is answered
}

// lazyCommit runs query, one write on SQLite returning keys, which it hands
// to scan; the commit is not waited for on disk: the connection runs the
// statement at synchronous NORMAL and goes back to the URL's level. (On
// PostgreSQL the statement itself turns synchronous_commit off.)
//
// Why a mark may skip the fsync when nothing else reins acknowledges may:
// the write-ahead log is flushed in order, so the next durable commit (on
// any connection) takes the mark to disk with it, and everything a request
// changes (a halt, a flag, a checklist answer) is such a commit, made after
// its mark. A power loss can therefore only forget the marks of requests
// that changed nothing on disk (a status query, a kill's confirmation,
// itself lazy: see SaveConfirmation, or work the loss cut short), whose
// replay within Slack's 5-minute window is harmless or wanted: a replayed
// kill only asks its user, on the original response_url, to confirm again. What the mark is for, one action per signed request across
// replicas, is decided by the primary key at commit, which is unchanged:
// the row is visible to every replica as soon as the commit returns.
func (s *Store) lazyCommit(ctx context.Context, query string, args []any, scan func(key string)) error {
	leave, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// On the driver's connection, so the insert stays prepared on it from
	// one batch to the next: parsing it was a third of a mark's cost.
	read := false // every returned key was scanned: the statement is done
	err = conn.Raw(func(dc any) (err error) {
		c, ok := dc.(interface {
			driver.ExecerContext
			driver.ConnPrepareContext
		})
		if !ok {
			return fmt.Errorf("SQLite driver connection %T cannot execute directly", dc)
		}
		level := int(s.syncLevel.Load()) // every connection runs the URL's level: read it once
		if level < 0 {
			if level, err = sqliteSynchronous(ctx, c); err != nil {
				return err
			}
			s.syncLevel.Store(int32(level))
		}
		if level > 1 {
			// Not a prepared statement: SQLite applies this pragma when
			// it compiles it, so a re-run of a prepared one would not.
			if _, err := c.ExecContext(ctx, `PRAGMA synchronous = NORMAL`, nil); err != nil {
				return err
			}
			defer func() {
				// The connection goes back to the pool only as durable as
				// the URL made it: should the reset fail, the pool drops it.
				if _, rerr := c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA synchronous = %d`, level), nil); rerr != nil {
					err = driver.ErrBadConn
				}
			}()
		}
		st, err := s.markStmts.get(ctx, c, query)
		if err != nil {
			return err
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, named)
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, 1)
		for {
			switch err := rows.Next(dest); {
			case errors.Is(err, io.EOF):
				read = true
				return nil
			case err != nil:
				return err
			}
			switch k := dest[0].(type) {
			case string:
				scan(k)
			case []byte:
				scan(string(k))
			default:
				return fmt.Errorf("returned key scanned as %T", dest[0])
			}
		}
	})
	if read && errors.Is(err, driver.ErrBadConn) {
		// Only the level's reset failed: the pool drops the connection,
		// and the marks, committed and read back, stand.
		return nil
	}
	return err
}

// sqliteSynchronous reads the connection's synchronous level.
func sqliteSynchronous(ctx context.Context, c driver.ConnPrepareContext) (int, error) {
	st, err := c.PrepareContext(ctx, `PRAGMA synchronous`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	level, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("PRAGMA synchronous answered %T", dest[0])
	}
	return int(level), nil
}

// driverStmts keeps the mark inserts prepared per SQLite driver connection.
// The pool keeps its connections for the process's life (no maximum
// lifetime), so the map stays as small as the pool; a connection the pool
// drops leaves its few statements behind, finalised when the database closes.
type driverStmts struct {
	mu sync.Mutex
	by map[any]map[string]driver.Stmt
}

func (d *driverStmts) get(ctx context.Context, c driver.ConnPrepareContext, query string) (driver.Stmt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == nil {
		d.by = map[any]map[string]driver.Stmt{}
	}
	m := d.by[c]
	if m == nil {
		m = map[string]driver.Stmt{}
		d.by[c] = m
	}
	if st := m[query]; st != nil {
		return st, nil
	}
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if _, ok := st.(driver.StmtQueryContext); !ok {
		st.Close()
		return nil, fmt.Errorf("SQLite statement %T cannot query with a context", st)
	}
	m[query] = st
	return st, nil
}

// firstRequest writes key in a statement it may share with concurrent
// calls and says whether this call is the first to mark it.
func (s *Store) firstRequest(ctx context.Context, key string, expires time.Time) (bool, error) {
	c := &markCall{ctx: ctx, key: key, expires: expires}
	s.marks.lanes.Of(key).Do(c, maxMarkBatch, s.writeMarks, func(batch []*markCall, _ any) {
		for _, m := range batch {
			m.first, m.err = false, wrap(context.Canceled, "remember slack request: batch panicked")
		}
	})
	return c.first, c.err
}

// markBatchWait bounds a batch's statement, which no one caller's context
// may cut short (see writeMarks): it runs until the last of its callers'
// deadlines, at most this long.
const markBatchWait = 5 * time.Second

// errMarkUnsure answers a request whose mark a failed batch may have
// written: it is not run, as a replay would not be, but its user is told.
var errMarkUnsure = errors.New("remember slack request: a failed write may have marked it; not run")

// writeMarks writes the batch's live keys in one statement. Should it fail
// (a deadlock with another replica's batch, the database gone), each call
// is tried alone so one failure fails only its own request.
//
// The statement runs under a context of its own, not the first caller's:
// a caller giving up must not fail the others' marks, and on SQLite an
// INSERT … RETURNING cut short after its first step has committed its rows
// yet returns the context's error. For the same reason a call tried alone
// after a failed batch that finds its key already there cannot tell its own
// mark, written by that batch, from a replay's: it fails with errMarkUnsure
// (the user is told to try again) rather than be dropped without a word as
// a replay (a kill nobody hears of).
func (s *Store) writeMarks(batch []*markCall) { writeMarksWith(batch, s.insertMarks) }

// writeMarksWith is writeMarks over insert (insertMarks, or a test's).
func writeMarksWith(batch []*markCall, insert func(context.Context, []*markCall) error) {
	live := make([]*markCall, 0, len(batch))
	for _, c := range batch {
		if c.err = c.ctx.Err(); c.err != nil {
			c.err = wrap(c.err, "remember slack request")
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		until, latest := time.Now().Add(markBatchWait), time.Time{}
		for _, c := range live {
			if d, ok := c.ctx.Deadline(); !ok || d.After(until) {
				latest = until
				break
			} else if d.After(latest) {
				latest = d
			}
		}
		ctx, cancel := context.WithDeadline(context.WithoutCancel(live[0].ctx), latest)
		err := insert(ctx, live)
		cancel()
		if err == nil {
			return
		}
	}
	unsure := len(live) > 1
	for _, c := range live {
		if c.err = insert(c.ctx, []*markCall{c}); c.err == nil && !c.first && unsure {
			c.err = errMarkUnsure
		}
	}
}

// insertMarks inserts the calls' keys and sets each call's first: true for
// the first call of each key the statement inserted, false for a key
// already there or met earlier in the batch (a replay racing its original).
func (s *Store) insertMarks(ctx context.Context, calls []*markCall) error {
	// Keys in sorted order, so two replicas' batches lock shared keys in
	// the same order on PostgreSQL and cannot deadlock on each other.
	keys := make([]string, 0, len(calls))
	expires := map[string]time.Time{}
	for _, c := range calls {
		if e, seen := expires[c.key]; !seen || c.expires.After(e) {
			if !seen {
				keys = append(keys, c.key)
			}
			expires[c.key] = c.expires
		}
	}
	slices.Sort(keys)
	// Padded to a power of two by repeating the last key, which the
	// statement then skips as a conflict, so a connection prepares at most
	// seven shapes of it.
	rows := 1
	for rows < len(keys) {
		rows *= 2
	}
	// On PostgreSQL the statement turns synchronous_commit off for its own
	// implicit transaction (set_config(…, true) is local to it), so it is
	// one round trip; on SQLite the connection does (lazyCommit).
	head, row, tail := `INSERT INTO slack_requests (key, expires_at) VALUES `, "(?, ?)", ``
	if s.d == migrations.Postgres {
		head, row = `INSERT INTO slack_requests (key, expires_at) SELECT v.key, v.expires_at FROM (VALUES `, "(?::text, ?::timestamptz)"
		tail = `) AS v (key, expires_at), (SELECT set_config('synchronous_commit', 'off', true)) AS lazy WHERE true`
	}
	var b strings.Builder
	b.WriteString(head)
	args := make([]any, 0, 2*rows)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
		k := keys[min(i, len(keys)-1)]
		args = append(args, k, s.queries.t(expires[k]))
	}
	b.WriteString(tail + ` ON CONFLICT (key) DO NOTHING RETURNING key`)
	inserted := map[string]bool{}
	scan := func(rows *sql.Rows) error {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		inserted[k] = true
		return nil
	}
	var err error
	if s.d == migrations.Postgres {
		err = s.queries.writeRows(ctx, b.String(), args, scan)
	} else {
		err = s.lazyCommit(ctx, b.String(), args, func(k string) { inserted[k] = true })
	}
	if err != nil {
		return wrap(err, "remember slack request")
	}
	for _, c := range calls {
		c.first, c.err = inserted[c.key], nil
		delete(inserted, c.key) // a second call of the key in the batch is a replay
	}
	return nil
}
