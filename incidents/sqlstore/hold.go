package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	jsoniter "github.com/json-iterator/go"

	"github.com/reins-oss/reins/incidents/sessions"
)

var (
	_ sessions.HoldStore  = (*Store)(nil)
	_ sessions.HoldPeeker = (*Store)(nil)
)

// keyChunk bounds the (agent, trace) pairs of one statement.
const keyChunk = 200

// BindTraces stores which session each trace belongs to; the first wins.
func (s *Store) BindTraces(ctx context.Context, bs []sessions.TraceBinding, now time.Time) error {
	return s.inTx(ctx, func(q *queries) error {
		for start := 0; start < len(bs); start += keyChunk {
			chunk := bs[start:min(start+keyChunk, len(bs))]
			var b strings.Builder
			args := make([]any, 0, 4*len(chunk))
			b.WriteString(`INSERT INTO trace_sessions (agent, trace_id, session_id, bound_at) VALUES `)
			for i, t := range chunk {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(?, ?, ?, ?)")
				args = append(args, t.Agent, t.TraceID, t.Session, q.t(now))
			}
			b.WriteString(` ON CONFLICT (agent, trace_id) DO NOTHING`)
			if _, err := q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...); err != nil {
				return wrap(err, "bind %d traces to their sessions", len(bs))
			}
		}
		return nil
	})
}

// keyWhere is "(agent = ? AND trace_id = ?) OR …" for keys.
func keyWhere(keys []sessions.TraceKey) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(agent = ? AND trace_id = ?)")
		args = append(args, k.Agent, k.TraceID)
	}
	return b.String(), args
}

// TraceSessions returns the sessions bound to keys.
func (q *queries) TraceSessions(ctx context.Context, keys []sessions.TraceKey) (map[sessions.TraceKey]string, error) {
	out := map[sessions.TraceKey]string{}
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		where, args := keyWhere(chunk)
		var rows []struct {
			Agent   string `db:"agent"`
			TraceID string `db:"trace_id"`
			Session string `db:"session_id"`
		}
		if err := sqlxSelect(ctx, q, &rows, `SELECT agent, trace_id, session_id FROM trace_sessions WHERE `+where, args...); err != nil {
			return nil, wrap(err, "find the sessions of %d traces", len(keys))
		}
		for _, r := range rows {
			out[sessions.TraceKey{Agent: r.Agent, TraceID: r.TraceID}] = r.Session
		}
	}
	return out, nil
}

// HoldSteps keeps the first steps that fit within maxSpans and maxBytes:
// one row per (agent, trace) of steps, the chunk, whose ID is derived from
// its span IDs so an exporter's retry of the same request holds nothing
// twice.
func (s *Store) HoldSteps(ctx context.Context, steps []sessions.Step, now time.Time, maxSpans int, maxBytes int64) (int, error) {
	// Encoded before the transaction: on SQLite its time is every
	// writer's wait.
	bodies := make([][]byte, len(steps))
	for i, st := range steps {
		body, err := json.Marshal(st)
		if err != nil {
			return 0, err
		}
		bodies[i] = body
	}
	kept := 0
	var added heldTotals
	err := s.inTx(ctx, func(q *queries) error {
		kept, added = 0, heldTotals{}
		have, err := s.heldCount(ctx, q)
		if err != nil {
			return err
		}
		var order []sessions.TraceKey
		chunks := map[sessions.TraceKey]*heldChunk{}
		for i, st := range steps {
			body := bodies[i]
			if have.N+1 > int64(maxSpans) || have.Bytes+int64(len(body)) > maxBytes {
				break
			}
			have.N++
			have.Bytes += int64(len(body))
			k := sessions.TraceKey{Agent: st.Agent, TraceID: st.TraceID}
			c := chunks[k]
			if c == nil {
				c = &heldChunk{id: sha256.New()}
				c.steps.WriteByte('[')
				chunks[k] = c
				order = append(order, k)
			}
			if c.spans > 0 {
				c.steps.WriteByte(',')
			}
			c.steps.Write(body)
			c.bytes += int64(len(body))
			c.spans++
			c.id.Write([]byte(st.SpanID))
			c.id.Write([]byte{0})
			kept++
		}
		for start := 0; start < len(order); start += keyChunk {
			part := order[start:min(start+keyChunk, len(order))]
			var b strings.Builder
			args := make([]any, 0, 7*len(part))
			b.WriteString(`INSERT INTO held_chunks (agent, trace_id, chunk_id, steps, spans, bytes, held_at) VALUES `)
			for i, k := range part {
				if i > 0 {
					b.WriteString(", ")
				}
				c := chunks[k]
				c.steps.WriteByte(']')
				b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
				args = append(args, k.Agent, k.TraceID, hex.EncodeToString(c.id.Sum(nil)[:16]), c.steps.String(),
					c.spans, c.bytes, q.t(now))
			}
			b.WriteString(` ON CONFLICT (agent, trace_id, chunk_id) DO NOTHING RETURNING spans, bytes`)
			got, err := q.heldRows(ctx, b.String(), args)
			if err != nil {
				return wrap(err, "hold spans for their trace's session")
			}
			added.N += got.N
			added.Bytes += got.Bytes
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.heldMu.Lock()
	s.held.N += added.N
	s.held.Bytes += added.Bytes
	s.heldMu.Unlock()
	return kept, nil
}

// heldChunk is the JSON array of one trace's held steps being built, with
// the hash of their span IDs that names it.
type heldChunk struct {
	steps        bytes.Buffer
	spans, bytes int64
	id           hash.Hash
}

// heldRows runs a statement returning (spans, bytes) rows and adds them up.
func (q *queries) heldRows(ctx context.Context, query string, args []any) (heldTotals, error) {
	var sum heldTotals
	rows, err := q.x.QueryContext(ctx, q.x.Rebind(query), args...)
	if err != nil {
		return sum, err
	}
	defer rows.Close()
	for rows.Next() {
		var n, b int64
		if err := rows.Scan(&n, &b); err != nil {
			return sum, err
		}
		sum.N += n
		sum.Bytes += b
	}
	return sum, rows.Err()
}

// heldTotals is the count and size of the held spans.
type heldTotals struct {
	N     int64 `db:"n"`
	Bytes int64 `db:"b"`
}

// heldCountFor is how long the held spans' count is taken from memory
// (this process's holds and claims added in) before it is read again:
// counting every held row on each export was a full scan of the table.
// Other replicas' holds make the bound approximate by what they add in
// that time.
const heldCountFor = time.Second

func (s *Store) heldCount(ctx context.Context, q *queries) (heldTotals, error) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if time.Since(s.heldAt) < heldCountFor {
		return s.held, nil
	}
	var have heldTotals
	if err := sqlxGet(ctx, q, &have, `SELECT COALESCE(SUM(spans), 0) AS n, COALESCE(SUM(bytes), 0) AS b FROM held_chunks`); err != nil {
		return have, wrap(err, "count held spans")
	}
	s.held, s.heldAt = have, time.Now()
	return have, nil
}

// PeekHeld returns the held steps of keys, each naming its chunk in
// HeldIn, and leaves them held: WriteSteps deletes the chunks in the
// transaction that stores the steps. Most requests name sessions whose
// traces have nothing waiting: a read, which on SQLite does not queue at
// the writers' gate, is all they cost.
func (s *Store) PeekHeld(ctx context.Context, keys []sessions.TraceKey) ([]sessions.Step, error) {
	var out []sessions.Step
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		where, args := keyWhere(chunk)
		rows, err := s.queries.x.QueryContext(ctx, s.queries.x.Rebind(`SELECT chunk_id, steps FROM held_chunks WHERE `+where), args...)
		if err != nil {
			return out, wrap(err, "read held spans")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var id, body string
				if err := rows.Scan(&id, &body); err != nil {
					return err
				}
				steps, _ := unchunk(body)
				for i := range steps {
					steps[i].HeldIn = id
				}
				out = append(out, steps...)
			}
			return rows.Err()
		}()
		if err != nil {
			return out, wrap(err, "read held spans")
		}
	}
	return out, nil
}

// chunkJSON decodes held chunks as encoding/json does, in about 40% of its
// time: decoding was the largest cost of a join.
var chunkJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// unchunk decodes a held chunk; a chunk that does not decode is not ours to
// fail on (the rest are claimed) and yields nothing.
func unchunk(body string) ([]sessions.Step, error) {
	var steps []sessions.Step
	if err := chunkJSON.UnmarshalFromString(body, &steps); err != nil {
		return nil, err
	}
	return steps, nil
}

// deleteHeldChunks deletes, in the write transaction of q, the held chunks
// steps were read from (Step.HeldIn).
func (s *Store) deleteHeldChunks(ctx context.Context, q *queries, steps []sessions.Step) error {
	type chunkKey struct{ agent, trace, id string }
	seen := map[chunkKey]bool{}
	var keys []chunkKey
	for _, st := range steps {
		if st.HeldIn == "" {
			continue
		}
		if k := (chunkKey{st.Agent, st.TraceID, st.HeldIn}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	var freed heldTotals
	for start := 0; start < len(keys); start += keyChunk {
		part := keys[start:min(start+keyChunk, len(keys))]
		var b strings.Builder
		args := make([]any, 0, 3*len(part))
		b.WriteString(`DELETE FROM held_chunks WHERE `)
		for i, k := range part {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString("(agent = ? AND trace_id = ? AND chunk_id = ?)")
			args = append(args, k.agent, k.trace, k.id)
		}
		b.WriteString(` RETURNING spans, bytes`)
		got, err := q.heldRows(ctx, b.String(), args)
		if err != nil {
			return wrap(err, "take joined spans out of the hold")
		}
		freed.N += got.N
		freed.Bytes += got.Bytes
	}
	if len(keys) > 0 {
		// Counted out at once: a rolled-back write leaves the count low
		// until the next read from the store (heldCountFor).
		s.heldMu.Lock()
		s.held.N = max(0, s.held.N-freed.N)
		s.held.Bytes = max(0, s.held.Bytes-freed.Bytes)
		s.heldMu.Unlock()
	}
	return nil
}

// ClaimHeld removes and returns the held steps of keys.
func (s *Store) ClaimHeld(ctx context.Context, keys []sessions.TraceKey) ([]sessions.Step, error) {
	var out []sessions.Step
	for start := 0; start < len(keys); start += keyChunk {
		chunk := keys[start:min(start+keyChunk, len(keys))]
		where, args := keyWhere(chunk)
		// Most requests name sessions whose traces have nothing waiting: a
		// read, which on SQLite does not queue at the writers' gate, spares
		// them a DELETE.
		var any []int
		if err := sqlxSelect(ctx, &s.queries, &any, `SELECT 1 FROM held_chunks WHERE `+where+` LIMIT 1`, args...); err != nil {
			return out, wrap(err, "look for held spans")
		}
		if len(any) == 0 {
			continue
		}
		steps, err := s.deleteHeld(ctx, where, args)
		if err != nil {
			return out, err
		}
		out = append(out, steps...)
	}
	return out, nil
}

// ClaimBound removes the held steps whose trace is bound, with its session.
func (s *Store) ClaimBound(ctx context.Context, limit int) ([]sessions.Step, error) {
	steps, err := s.deleteHeld(ctx, `EXISTS (SELECT 1 FROM trace_sessions t WHERE t.agent = held_chunks.agent
		AND t.trace_id = held_chunks.trace_id)`, nil)
	if err != nil || len(steps) == 0 {
		return steps, err
	}
	bound, err := s.TraceSessions(ctx, traceKeysOf(steps))
	if err != nil {
		return nil, err
	}
	for i := range steps {
		steps[i].Session = bound[sessions.TraceKey{Agent: steps[i].Agent, TraceID: steps[i].TraceID}]
	}
	return steps, nil
}

func traceKeysOf(steps []sessions.Step) []sessions.TraceKey {
	seen := map[sessions.TraceKey]bool{}
	var out []sessions.TraceKey
	for _, st := range steps {
		k := sessions.TraceKey{Agent: st.Agent, TraceID: st.TraceID}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// ExpireHeld removes and returns the steps held before before.
func (s *Store) ExpireHeld(ctx context.Context, before time.Time, limit int) ([]sessions.Step, error) {
	return s.deleteHeld(ctx, `held_at < ?`, []any{s.queries.t(before)})
}

// deleteHeld deletes the held chunks matching where and returns their steps.
func (s *Store) deleteHeld(ctx context.Context, where string, args []any) ([]sessions.Step, error) {
	var out []sessions.Step
	var freed heldTotals
	err := s.inTx(ctx, func(q *queries) error {
		out, freed = out[:0], heldTotals{}
		rows, err := q.x.QueryContext(ctx, q.x.Rebind(`DELETE FROM held_chunks WHERE `+where+` RETURNING steps, spans, bytes`), args...)
		if err != nil {
			return wrap(err, "take held spans")
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			var n, b int64
			if err := rows.Scan(&body, &n, &b); err != nil {
				return wrap(err, "take held spans")
			}
			freed.N += n
			freed.Bytes += b
			steps, _ := unchunk(body)
			out = append(out, steps...)
		}
		if err := rows.Err(); err != nil {
			return wrap(err, "take held spans")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.heldMu.Lock()
	s.held.N = max(0, s.held.N-freed.N)
	s.held.Bytes = max(0, s.held.Bytes-freed.Bytes)
	s.heldMu.Unlock()
	return out, nil
}

// HeldStats returns the spans held and their bytes.
func (q *queries) HeldStats(ctx context.Context) (spans, bytes int64, err error) {
	var have struct {
		N     int64 `db:"n"`
		Bytes int64 `db:"b"`
	}
	if err := sqlxGet(ctx, q, &have, `SELECT COALESCE(SUM(spans), 0) AS n, COALESCE(SUM(bytes), 0) AS b FROM held_chunks`); err != nil {
		return 0, 0, wrap(err, "count held spans")
	}
	return have.N, have.Bytes, nil
}

// ForgetTraces deletes bindings written before before.
func (s *Store) ForgetTraces(ctx context.Context, before time.Time) error {
	return s.write(ctx, false, func(q *queries) error {
		if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM trace_sessions WHERE bound_at < ?`), q.t(before)); err != nil {
			return wrap(err, "forget old trace bindings")
		}
		return nil
	})
}

// AddRefusals adds refused spans to their minute's counts.
func (s *Store) AddRefusals(ctx context.Context, rs []sessions.Refusal) error {
	if len(rs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(q *queries) error {
		for _, r := range rs {
			minute := orNow(r.At).Truncate(time.Minute)
			if _, err := q.x.ExecContext(ctx, q.x.Rebind(`INSERT INTO span_refusals (minute, reason, agent, session_id, spans)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (minute, reason, agent, session_id)
				DO UPDATE SET spans = span_refusals.spans + excluded.spans`),
				q.t(minute), r.Reason, sessions.Truncate(r.Agent, 256), sessions.Truncate(r.Session, sessions.MaxIDLen), r.Spans); err != nil {
				return wrap(err, "count refused spans")
			}
		}
		return nil
	})
}

// FindRefusals returns refusals since since (of one session if not "").
func (q *queries) FindRefusals(ctx context.Context, since time.Time, session string, limit int) ([]sessions.Refusal, error) {
	query := `SELECT minute, reason, agent, session_id, spans FROM span_refusals WHERE minute >= ?`
	args := []any{q.t(since.Truncate(time.Minute))}
	if session != "" {
		query += ` AND session_id = ?`
		args = append(args, session)
	}
	query += ` ORDER BY minute DESC, reason, agent LIMIT ?`
	args = append(args, limit)
	var rows []struct {
		Minute  dbTime `db:"minute"`
		Reason  string `db:"reason"`
		Agent   string `db:"agent"`
		Session string `db:"session_id"`
		Spans   int64  `db:"spans"`
	}
	if err := sqlxSelect(ctx, q, &rows, query, args...); err != nil {
		return nil, wrap(err, "find refused spans")
	}
	out := make([]sessions.Refusal, len(rows))
	for i, r := range rows {
		out[i] = sessions.Refusal{At: r.Minute.T, Reason: r.Reason, Agent: r.Agent, Session: r.Session, Spans: r.Spans}
	}
	return out, nil
}

// DeleteRefusals deletes refusals before before.
func (s *Store) DeleteRefusals(ctx context.Context, before time.Time) error {
	return s.write(ctx, false, func(q *queries) error {
		if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM span_refusals WHERE minute < ?`), q.t(before)); err != nil {
			return wrap(err, "delete old refusals")
		}
		return nil
	})
}

func sqlxGet(ctx context.Context, q *queries, dst any, query string, args ...any) error {
	return sqlx.GetContext(ctx, q.x, dst, q.x.Rebind(query), args...)
}
