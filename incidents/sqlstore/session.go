package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/migrations"
)

var _ sessions.Store = (*Store)(nil)

// stepChunk bounds the rows of one multi-row INSERT: 23 columns × 1,000
// rows stays under both SQLite's (32,766) and PostgreSQL's (65,535) limits on
// bound parameters, and a full chunk, the usual exporter batch, reuses one
// prepared statement.
const stepChunk = 1000

// idChunk bounds the IDs of one IN list.
const idChunk = 500

const stepCols = `session_id, span_id, trace_id, parent_id, agent, started_at, duration_us, kind, name, tool,
	model, input_tokens, output_tokens, cost, priced, error, error_type, system, content, args_hash, scores, received_at, seq`

const totalsCols = `id, agent, steps, stored_steps, tool_calls, errors, input_tokens, output_tokens, cost,
	unpriced_steps, first_at, last_at`

// WriteSteps stores steps and grows their sessions' totals in one
// transaction, and deletes the held chunks the steps were read from. A span
// already stored is skipped: exporters retry.
func (s *Store) WriteSteps(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	orig := steps
	steps = uniqueSteps(steps) // a copy: numbering it leaves the caller's alone until the commit
	if len(steps) == 0 {
		return nil, nil
	}
	// The rows' values are bound before the transaction (its number, set
	// in it, last): on SQLite the transaction's time is every writer's wait.
	args := make([]any, 0, stepArgs*len(steps))
	for _, st := range steps {
		args = s.queries.stepRow(args, st)
	}
	var out []sessions.Totals
	numbered := map[stepKey]int64{}
	err := s.inTx(ctx, func(q *queries) error {
		if err := q.ensureSessions(ctx, steps); err != nil {
			return err
		}
		last, err := q.lastSeqs(ctx, steps)
		if err != nil {
			return err
		}
		for i := range steps {
			last[steps[i].Key()]++
			steps[i].N = last[steps[i].Key()]
			args[stepArgs*i+stepArgs-1] = steps[i].N
		}
		written := map[stepKey]bool{}
		for start := 0; start < len(steps); start += stepChunk {
			end := min(start+stepChunk, len(steps))
			if err := q.insertSteps(ctx, steps[start:end], args[stepArgs*start:stepArgs*end], written); err != nil {
				return err
			}
		}
		// Held spans joined to their session leave the hold in the
		// transaction that stores them (sessions.HoldPeeker).
		if err := s.deleteHeldChunks(ctx, q, orig); err != nil {
			return err
		}
		deltas := map[sessions.Key]*sessions.Totals{}
		judged := map[sessions.Key]bool{}
		for _, st := range steps {
			if !written[stepKey{st.Agent, st.Session, st.SpanID}] {
				continue
			}
			numbered[stepKey{st.Agent, st.Session, st.SpanID}] = st.N
			if st.Judged {
				judged[st.Key()] = true
			}
			d := deltas[st.Key()]
			if d == nil {
				d = &sessions.Totals{}
				deltas[st.Key()] = d
			}
			d.Add(st)
		}
		for _, k := range sortedKeys(deltas) {
			t, err := q.growTotals(ctx, *deltas[k], last[k])
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return q.markUnjudged(ctx, out, judged)
	})
	if err != nil {
		return nil, wrap(err, "store %d session steps", len(steps))
	}
	// The caller judges and shows the steps it handed in: give them their
	// numbers.
	for i := range orig {
		if n, ok := numbered[stepKey{orig[i].Agent, orig[i].Session, orig[i].SpanID}]; ok {
			orig[i].N = n
		}
	}
	return out, nil
}

// lastSeqs reads, and on PostgreSQL locks, the last step number of each
// session of steps, in ID order as ensureSessions created them.
func (q *queries) lastSeqs(ctx context.Context, steps []sessions.Step) (map[sessions.Key]int64, error) {
	seen := map[sessions.Key]bool{}
	var ks []sessions.Key
	for _, st := range steps {
		if k := st.Key(); !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, sessions.Key.Compare)
	out := make(map[sessions.Key]int64, len(ks))
	for start := 0; start < len(ks); start += keyChunk {
		chunk := ks[start:min(start+keyChunk, len(ks))]
		var b strings.Builder
		args := make([]any, 0, 2*len(chunk))
		for i, k := range chunk {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString("(agent = ? AND id = ?)")
			args = append(args, k.Agent, k.ID)
		}
		var rows []struct {
			Agent   string `db:"agent"`
			ID      string `db:"id"`
			LastSeq int64  `db:"last_seq"`
		}
		if err := sqlxSelect(ctx, q, &rows, `SELECT agent, id, last_seq FROM sessions WHERE `+b.String()+
			` ORDER BY agent, id`+q.forUpdate(), args...); err != nil {
			return nil, wrap(err, "number the steps of %d sessions", len(ks))
		}
		for _, r := range rows {
			out[sessions.Key{Agent: r.Agent, ID: r.ID}] = r.LastSeq
		}
	}
	return out, nil
}

// stepKey is a stored step's identity: its session's (agent, ID) and its span.
type stepKey struct{ agent, session, span string }

// sortedKeys returns the sessions of m in (agent, ID) order, the order
// writers lock their rows in.
func sortedKeys[V any](m map[sessions.Key]V) []sessions.Key {
	out := make([]sessions.Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, sessions.Key.Compare)
	return out
}

// uniqueSteps drops repeats of a span within one batch, keeping the first.
func uniqueSteps(steps []sessions.Step) []sessions.Step {
	seen := make(map[stepKey]bool, len(steps))
	out := steps[:0:0]
	for _, st := range steps {
		k := stepKey{st.Agent, st.Session, st.SpanID}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, st)
	}
	return out
}

// ensureSessions creates the totals rows the steps need, in (agent, ID)
// order so concurrent writers lock them in the same order. A new session
// was first and last seen when its first step arrived.
func (q *queries) ensureSessions(ctx context.Context, steps []sessions.Step) error {
	first := map[sessions.Key]sessions.Step{}
	for _, st := range steps {
		if f, ok := first[st.Key()]; !ok || st.Arrival().Before(f.Arrival()) {
			first[st.Key()] = st
		}
	}
	ks := sortedKeys(first)
	var b strings.Builder
	args := make([]any, 0, 4*len(ks))
	b.WriteString(`INSERT INTO sessions (id, agent, first_at, last_at) VALUES `)
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?)")
		st := first[k]
		args = append(args, k.ID, k.Agent, q.t(st.Arrival()), q.t(st.Arrival()))
	}
	b.WriteString(` ON CONFLICT (agent, id) DO NOTHING`)
	if _, err := q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...); err != nil {
		return wrap(err, "create session rows")
	}
	return nil
}

// insertSteps writes one chunk and marks in written the steps that were new.
// Usually every step is: the rows affected say so, and no row comes back
// (RETURNING a row per step cost about a tenth of the insert). When some
// were stored already (an exporter's retry), the new ones are those whose
// stored number is the one this write gave them: a step stored before got
// its number from an earlier write, below the session's last_seq this
// transaction read (and, on PostgreSQL, locked) before numbering.
func (q *queries) insertSteps(ctx context.Context, chunk []sessions.Step, args []any, written map[stepKey]bool) error {
	var b strings.Builder
	b.Grow(len(insertStepsHead) + len(chunk)*(len(stepMarks)+2) + len(insertStepsTail))
	b.WriteString(insertStepsHead)
	for i := range chunk {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(stepMarks)
	}
	b.WriteString(insertStepsTail)
	var res sql.Result
	var err error
	if len(chunk) == stepChunk {
		res, err = q.exec(ctx, b.String(), args...)
	} else {
		res, err = q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...)
	}
	if err != nil {
		return wrap(err, "insert session steps")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "insert session steps: rows affected")
	}
	if n == int64(len(chunk)) {
		for _, st := range chunk {
			written[stepKey{st.Agent, st.Session, st.SpanID}] = true
		}
		return nil
	}
	if n == 0 {
		return nil
	}
	return q.newlyWritten(ctx, chunk, written)
}

// stepArgs is the number of stepCols: the values of one step's row.
const stepArgs = 23

const (
	insertStepsHead = `INSERT INTO session_steps (` + stepCols + `) VALUES `
	stepMarks       = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	insertStepsTail = ` ON CONFLICT (agent, session_id, span_id) DO NOTHING`
)

// stepRow appends the values of st's row, in stepCols order; its number
// (seq) comes last.
func (q *queries) stepRow(args []any, st sessions.Step) []any {
	return append(args, st.Session, st.SpanID, st.TraceID, st.ParentID, st.Agent, q.t(st.Start),
		st.Duration.Microseconds(), st.Kind, st.Name, st.Tool, st.Model, st.InputTokens, st.OutputTokens,
		st.Cost, st.Priced, st.Error, st.ErrorType, st.System, st.Content, st.ArgsHash, scoresJSON(st.Scores),
		q.t(st.Arrival()), st.N)
}

// newlyWritten marks in written the steps of chunk stored with the number
// this write gave them.
func (q *queries) newlyWritten(ctx context.Context, chunk []sessions.Step, written map[stepKey]bool) error {
	bySession := map[sessions.Key][]sessions.Step{}
	for _, st := range chunk {
		bySession[st.Key()] = append(bySession[st.Key()], st)
	}
	for _, k := range sortedKeys(bySession) {
		steps := bySession[k]
		want := make(map[string]int64, len(steps))
		for _, st := range steps {
			want[st.SpanID] = st.N
		}
		for start := 0; start < len(steps); start += idChunk {
			part := steps[start:min(start+idChunk, len(steps))]
			args := make([]any, 0, 2+len(part))
			args = append(args, k.Agent, k.ID)
			for _, st := range part {
				args = append(args, st.SpanID)
			}
			var rows []struct {
				SpanID string `db:"span_id"`
				Seq    int64  `db:"seq"`
			}
			if err := sqlxSelect(ctx, q, &rows, `SELECT span_id, seq FROM session_steps WHERE agent = ? AND session_id = ?
				AND span_id IN (`+marks(len(part))+`)`, args...); err != nil {
				return wrap(err, "find the session steps just stored")
			}
			for _, r := range rows {
				if n, ok := want[r.SpanID]; ok && n == r.Seq {
					written[stepKey{k.Agent, k.ID, r.SpanID}] = true
				}
			}
		}
	}
	return nil
}

type totalsRow struct {
	ID           string  `db:"id"`
	Agent        string  `db:"agent"`
	Steps        int64   `db:"steps"`
	Stored       int64   `db:"stored_steps"`
	ToolCalls    int64   `db:"tool_calls"`
	Errors       int64   `db:"errors"`
	InputTokens  int64   `db:"input_tokens"`
	OutputTokens int64   `db:"output_tokens"`
	Cost         float64 `db:"cost"`
	Unpriced     int64   `db:"unpriced_steps"`
	First        dbTime  `db:"first_at"`
	Last         dbTime  `db:"last_at"`
}

func (r totalsRow) totals() sessions.Totals {
	return sessions.Totals{Session: r.ID, Agent: r.Agent, Steps: r.Steps, Stored: r.Stored, ToolCalls: r.ToolCalls,
		Errors: r.Errors, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Cost: r.Cost,
		Unpriced: r.Unpriced, First: r.First.T, Last: r.Last.T}
}

// growTotals adds d to its session's totals and returns them.
func (q *queries) growTotals(ctx context.Context, d sessions.Totals, lastSeq int64) (sessions.Totals, error) {
	var r totalsRow
	err := q.get(ctx, &r, `UPDATE sessions SET last_seq = CASE WHEN last_seq < ? THEN ? ELSE last_seq END,
		steps = steps + ?, stored_steps = stored_steps + ?,
		tool_calls = tool_calls + ?, errors = errors + ?, input_tokens = input_tokens + ?,
		output_tokens = output_tokens + ?, cost = cost + ?, unpriced_steps = unpriced_steps + ?,
		first_at = CASE WHEN first_at > ? THEN ? ELSE first_at END,
		last_at = CASE WHEN last_at < ? THEN ? ELSE last_at END
		WHERE agent = ? AND id = ? RETURNING `+totalsCols,
		lastSeq, lastSeq, d.Steps, d.Stored, d.ToolCalls, d.Errors, d.InputTokens, d.OutputTokens, d.Cost, d.Unpriced,
		q.t(d.First), q.t(d.First), q.t(d.Last), q.t(d.Last), d.Agent, d.Session)
	if err != nil {
		return sessions.Totals{}, wrap(err, "update totals of session %s of %s", d.Session, d.Agent)
	}
	return r.totals(), nil
}

type stepRow struct {
	Session      string  `db:"session_id"`
	SpanID       string  `db:"span_id"`
	TraceID      string  `db:"trace_id"`
	ParentID     string  `db:"parent_id"`
	Agent        string  `db:"agent"`
	Start        dbTime  `db:"started_at"`
	DurationUS   int64   `db:"duration_us"`
	Kind         string  `db:"kind"`
	Name         string  `db:"name"`
	Tool         string  `db:"tool"`
	Model        string  `db:"model"`
	InputTokens  int64   `db:"input_tokens"`
	OutputTokens int64   `db:"output_tokens"`
	Cost         float64 `db:"cost"`
	Priced       bool    `db:"priced"`
	Error        bool    `db:"error"`
	ErrorType    string  `db:"error_type"`
	System       string  `db:"system"`
	Content      string  `db:"content"`
	ArgsHash     string  `db:"args_hash"`
	Scores       string  `db:"scores"`
	Received     dbTime  `db:"received_at"`
	Seq          int64   `db:"seq"`
}

// FindSession returns a session's totals and its stored steps in time order.
func (q *queries) FindSession(ctx context.Context, agent, id string) (sessions.Record, error) {
	return q.findSession(ctx, agent, id, "")
}

// FindNotable returns a session's totals and its tool calls and errors.
func (q *queries) FindNotable(ctx context.Context, agent, id string) (sessions.Record, error) {
	return q.findSession(ctx, agent, id, ` AND (tool <> '' OR kind = 'execute_tool' OR error = `+q.boolTrue()+`)`)
}

func (q *queries) boolTrue() string {
	if q.s.d == migrations.SQLite {
		return "1"
	}
	return "TRUE"
}

func (q *queries) findSession(ctx context.Context, agent, id, where string) (sessions.Record, error) {
	var rows []totalsRow
	if err := q.sel(ctx, &rows, `SELECT `+totalsCols+` FROM sessions WHERE agent = ? AND id = ?`, agent, id); err != nil {
		return sessions.Record{}, wrap(err, "find session %s of %s", id, agent)
	}
	if len(rows) == 0 {
		return sessions.Record{}, sessions.ErrNotFound
	}
	rec := sessions.Record{Totals: rows[0].totals()}
	var steps []stepRow
	if err := q.sel(ctx, &steps, `SELECT `+stepCols+` FROM session_steps WHERE agent = ? AND session_id = ?`+where+`
		ORDER BY started_at, span_id`, agent, id); err != nil {
		return sessions.Record{}, wrap(err, "find steps of session %s of %s", id, agent)
	}
	rec.Steps = make([]sessions.Step, len(steps))
	for i, r := range steps {
		rec.Steps[i] = sessions.Step{Session: r.Session, SpanID: r.SpanID, TraceID: r.TraceID, ParentID: r.ParentID,
			Agent: r.Agent, Start: r.Start.T, Duration: time.Duration(r.DurationUS) * time.Microsecond,
			Kind: r.Kind, Name: r.Name, Tool: r.Tool, Model: r.Model, InputTokens: r.InputTokens,
			OutputTokens: r.OutputTokens, Cost: r.Cost, Priced: r.Priced, Error: r.Error,
			ErrorType: r.ErrorType, System: r.System, Content: r.Content, ArgsHash: r.ArgsHash,
			Received: r.Received.T, N: r.Seq}
		if err := unjs(r.Scores, &rec.Steps[i].Scores, "step scores"); err != nil {
			return sessions.Record{}, err
		}
	}
	return rec, nil
}

// SessionAgents returns the agents that have a session with ID id, sorted.
func (q *queries) SessionAgents(ctx context.Context, id string) ([]string, error) {
	var agents []string
	if err := q.sel(ctx, &agents, `SELECT agent FROM sessions WHERE id = ? ORDER BY agent`, id); err != nil {
		return nil, wrap(err, "find the agents of session %s", id)
	}
	return agents, nil
}

// FindSessions returns agent's sessions active at or after since, newest first.
func (q *queries) FindSessions(ctx context.Context, agent string, since time.Time, limit int) ([]sessions.Totals, error) {
	var rows []totalsRow
	err := q.sel(ctx, &rows, `SELECT `+totalsCols+` FROM sessions WHERE agent = ? AND last_at >= ?
		ORDER BY last_at DESC, id LIMIT ?`, agent, q.t(since), limit)
	if err != nil {
		return nil, wrap(err, "find sessions of %s", agent)
	}
	out := make([]sessions.Totals, len(rows))
	for i, r := range rows {
		out[i] = r.totals()
	}
	return out, nil
}

// DeleteSteps removes stored steps of a session; its totals keep counting them.
func (s *Store) DeleteSteps(ctx context.Context, agent, session string, spanIDs []string) error {
	return s.inTx(ctx, func(q *queries) error {
		var n int64
		for start := 0; start < len(spanIDs); start += idChunk {
			chunk := spanIDs[start:min(start+idChunk, len(spanIDs))]
			res, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM session_steps WHERE agent = ? AND session_id = ?
				AND span_id IN (`+marks(len(chunk))+`)`), append([]any{agent, session}, anys(chunk)...)...)
			if err != nil {
				return wrap(err, "drop steps of session %s", session)
			}
			c, _ := res.RowsAffected()
			n += c
		}
		if _, err := q.x.ExecContext(ctx, q.x.Rebind(`UPDATE sessions SET stored_steps = stored_steps - ?
			WHERE agent = ? AND id = ?`), n, agent, session); err != nil {
			return wrap(err, "drop steps of session %s", session)
		}
		return nil
	})
}

// DeleteSessions removes agent's sessions last active before before, except
// keep (IDs of agent's sessions, sorted).
func (s *Store) DeleteSessions(ctx context.Context, agent string, before time.Time, keep []string) (int, error) {
	var ids []string
	q := &s.queries
	if err := q.sel(ctx, &ids, `SELECT id FROM sessions WHERE agent = ? AND last_at < ?`, agent, q.t(before)); err != nil {
		return 0, wrap(err, "find old sessions of %s", agent)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool {
		_, named := slices.BinarySearch(keep, id)
		return named
	})
	for start := 0; start < len(ids); start += idChunk {
		chunk := ids[start:min(start+idChunk, len(ids))]
		err := s.inTx(ctx, func(q *queries) error {
			// Steps first: SQLite enforces the cascade only with foreign
			// keys on, and an explicit delete does not depend on it.
			args := append([]any{agent}, anys(chunk)...)
			if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM session_steps WHERE agent = ? AND session_id IN (`+
				marks(len(chunk))+`)`), args...); err != nil {
				return err
			}
			_, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM sessions WHERE agent = ? AND id IN (`+
				marks(len(chunk))+`)`), args...)
			return err
		})
		if err != nil {
			return start, wrap(err, "delete old sessions of %s", agent)
		}
	}
	return len(ids), nil
}

// NamedSessions returns every session an incident names: the incident's
// agent's session of each ID it lists.
func (q *queries) NamedSessions(ctx context.Context) ([]sessions.Key, error) {
	var rows []struct {
		Agent    string `db:"agent"`
		Sessions string `db:"sessions"`
	}
	if err := q.sel(ctx, &rows, `SELECT agent, sessions FROM incidents WHERE sessions <> '[]'`); err != nil {
		return nil, wrap(err, "find sessions named by incidents")
	}
	var out []sessions.Key
	for _, r := range rows {
		var ids []string
		if err := unjs(r.Sessions, &ids, "incident sessions"); err != nil {
			return nil, err
		}
		for _, id := range ids {
			out = append(out, sessions.Key{Agent: r.Agent, ID: id})
		}
	}
	return out, nil
}

// sqlxSelect runs a query whose text varies with its arguments (IN lists):
// it is not worth a prepared statement of its own.
func sqlxSelect(ctx context.Context, q *queries, dst any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, q.x, dst, q.x.Rebind(query), args...)
}

func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// scoresJSON encodes a step's scores; most steps have none and store "".
func scoresJSON(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // finite floats only: the intake drops NaN and Inf
	return string(b)
}
