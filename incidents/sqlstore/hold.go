package sqlstore

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents/sessions"
)

var _ sessions.HoldStore = (*Store)(nil)

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

// HoldSteps keeps the first steps that fit within maxSpans and maxBytes.
func (s *Store) HoldSteps(ctx context.Context, steps []sessions.Step, now time.Time, maxSpans int, maxBytes int64) (int, error) {
	kept := 0
	var added int64
	err := s.inTx(ctx, func(q *queries) error {
		kept, added = 0, 0
		have, err := s.heldCount(ctx, q)
		if err != nil {
			return err
		}
		var b strings.Builder
		var args []any
		b.WriteString(`INSERT INTO held_spans (agent, trace_id, span_id, step, bytes, held_at) VALUES `)
		for _, st := range steps {
			body, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if have.N+1 > int64(maxSpans) || have.Bytes+int64(len(body)) > maxBytes {
				break
			}
			have.N++
			have.Bytes += int64(len(body))
			added += int64(len(body))
			if len(args) > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			args = append(args, st.Agent, st.TraceID, st.SpanID, string(body), len(body), q.t(now))
			kept++
			if kept%keyChunk == 0 {
				if err := q.flushHeld(ctx, &b, &args); err != nil {
					return err
				}
			}
		}
		if len(args) > 0 {
			return q.flushHeld(ctx, &b, &args)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.heldMu.Lock()
	s.held.N += int64(kept)
	s.held.Bytes += added
	s.heldMu.Unlock()
	return kept, nil
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
	if err := sqlxGet(ctx, q, &have, `SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM held_spans`); err != nil {
		return have, wrap(err, "count held spans")
	}
	s.held, s.heldAt = have, time.Now()
	return have, nil
}

func (q *queries) flushHeld(ctx context.Context, b *strings.Builder, args *[]any) error {
	b.WriteString(` ON CONFLICT (agent, trace_id, span_id) DO NOTHING`)
	if _, err := q.x.ExecContext(ctx, q.x.Rebind(b.String()), *args...); err != nil {
		return wrap(err, "hold spans for their trace's session")
	}
	b.Reset()
	b.WriteString(`INSERT INTO held_spans (agent, trace_id, span_id, step, bytes, held_at) VALUES `)
	*args = (*args)[:0]
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
		if err := sqlxSelect(ctx, &s.queries, &any, `SELECT 1 FROM held_spans WHERE `+where+` LIMIT 1`, args...); err != nil {
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
	steps, err := s.deleteHeld(ctx, `EXISTS (SELECT 1 FROM trace_sessions t WHERE t.agent = held_spans.agent
		AND t.trace_id = held_spans.trace_id)`, nil)
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

// deleteHeld deletes the held rows matching where and returns their steps.
func (s *Store) deleteHeld(ctx context.Context, where string, args []any) ([]sessions.Step, error) {
	var out []sessions.Step
	var freed int64
	err := s.inTx(ctx, func(q *queries) error {
		out, freed = out[:0], 0
		rows, err := q.x.QueryContext(ctx, q.x.Rebind(`DELETE FROM held_spans WHERE `+where+` RETURNING step`), args...)
		if err != nil {
			return wrap(err, "take held spans")
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				return wrap(err, "take held spans")
			}
			freed += int64(len(body))
			var st sessions.Step
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				continue // not ours to fail on: the rest are claimed
			}
			out = append(out, st)
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
	s.held.N = max(0, s.held.N-int64(len(out)))
	s.held.Bytes = max(0, s.held.Bytes-freed)
	s.heldMu.Unlock()
	return out, nil
}

// HeldStats returns the spans held and their bytes.
func (q *queries) HeldStats(ctx context.Context) (spans, bytes int64, err error) {
	var have struct {
		N     int64 `db:"n"`
		Bytes int64 `db:"b"`
	}
	if err := sqlxGet(ctx, q, &have, `SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM held_spans`); err != nil {
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
