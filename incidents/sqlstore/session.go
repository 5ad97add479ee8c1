package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/migrations"
)

var _ sessions.Store = (*Store)(nil)

// idChunk bounds the IDs of one IN list.
const idChunk = 500

const stepCols = `session_id, span_id, trace_id, parent_id, agent, started_at, duration_us, kind, name, tool,
	model, input_tokens, output_tokens, cost, priced, error, error_type, system, content, args_hash, scores, received_at, seq`

const totalsCols = `id, agent, steps, stored_steps, tool_calls, errors, input_tokens, output_tokens, cost,
	unpriced_steps, first_at, last_at`

// WriteSteps stores steps and grows their sessions' totals in one
// transaction, and deletes the held chunks the steps were read from. A span
// already stored is skipped: exporters retry, and a Collector re-batches.
//
// A session's steps of one write are one row of step_chunks (two when some
// are tool calls or errors: FindNotable reads those alone), not a row each.
// What a row per span's primary key did, the write does under the lock it
// takes on the session's row to number the steps: it reads the span IDs the
// session's chunks hold and skips those.
func (s *Store) WriteSteps(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	orig := steps
	steps, from := uniqueSteps(steps) // a copy: numbering it leaves the caller's alone until the commit
	if len(steps) == 0 {
		return nil, nil
	}
	// The chunks are encoded before the transaction, numbered 1, 2, … in
	// their write (a body keeps differences of numbers, so it holds once
	// the transaction adds the session's last number): on SQLite the
	// transaction's time is every writer's wait.
	groups := groupSteps(steps)
	pre := make([][]chunkRow, len(groups))
	for i, g := range groups {
		for j, at := range g.at {
			steps[at].N = int64(j + 1)
		}
		pre[i] = encodeChunks(g.key, steps, g.at)
	}
	var out []sessions.Totals
	var stored []bool
	err := s.inTx(ctx, func(q *queries) error {
		if err := q.ensureSessions(ctx, steps, groups); err != nil {
			return err
		}
		heads, err := q.lastSeqs(ctx, groups)
		if err != nil {
			return err
		}
		stored, err = q.storedSpans(ctx, steps, groups, heads)
		if err != nil {
			return err
		}
		last := make(map[sessions.Key]int64, len(heads))
		for k, h := range heads {
			last[k] = h.LastSeq
		}
		// Every step of the write is numbered, a repeat too: the numbers
		// are those a row per span gave.
		for i := range steps {
			last[steps[i].Key()]++
			steps[i].N = last[steps[i].Key()]
		}
		var rows []chunkRow
		for i, g := range groups {
			base := heads[g.key].LastSeq
			if !slices.ContainsFunc(g.at, func(at int) bool { return stored[at] }) {
				for _, r := range pre[i] {
					r.chunk += base
					rows = append(rows, r)
				}
				continue
			}
			fresh := slices.DeleteFunc(slices.Clone(g.at), func(at int) bool { return stored[at] })
			rows = append(rows, encodeChunks(g.key, steps, fresh)...)
		}
		if err := q.insertChunks(ctx, rows); err != nil {
			return err
		}
		// Held spans joined to their session leave the hold in the
		// transaction that stores them (sessions.HoldPeeker).
		if err := s.deleteHeldChunks(ctx, q, orig); err != nil {
			return err
		}
		deltas := map[sessions.Key]*sessions.Totals{}
		judged := map[sessions.Key]bool{}
		for i, st := range steps {
			if stored[i] {
				continue
			}
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
		// In (agent, ID) order, the order writers lock their rows in.
		for _, k := range slices.SortedFunc(maps.Keys(deltas), sessions.Key.Compare) {
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
	for j, i := range from {
		if !stored[i] {
			orig[j].N = steps[i].N
		}
	}
	return out, nil
}

// stepGroup is one session's steps in a write: their indexes in it, in
// the write's order.
type stepGroup struct {
	key sessions.Key
	at  []int
}

// groupSteps groups steps by session, in (agent, ID) order.
func groupSteps(steps []sessions.Step) []stepGroup {
	one := true
	for i := 1; i < len(steps) && one; i++ {
		one = steps[i].Agent == steps[0].Agent && steps[i].Session == steps[0].Session
	}
	if one {
		at := make([]int, len(steps))
		for i := range at {
			at[i] = i
		}
		return []stepGroup{{key: steps[0].Key(), at: at}}
	}
	idx := map[sessions.Key]int{}
	var out []stepGroup
	for i := range steps {
		k := steps[i].Key()
		g, ok := idx[k]
		if !ok {
			g = len(out)
			idx[k] = g
			out = append(out, stepGroup{key: k})
		}
		out[g].at = append(out[g].at, i)
	}
	slices.SortFunc(out, func(a, b stepGroup) int { return a.key.Compare(b.key) })
	return out
}

// chunkRow is one row of step_chunks.
type chunkRow struct {
	key     sessions.Key
	chunk   int64
	notable bool
	steps   int
	spanIDs []byte
	body    []byte
}

// encodeChunks encodes the steps at indexes at (one session's, numbered)
// as its chunks: the tool calls and errors, and the others.
func encodeChunks(k sessions.Key, steps []sessions.Step, at []int) []chunkRow {
	note := make([]int, 0, len(at)/8)
	plain := make([]int, 0, len(at))
	size := 0
	for _, i := range at {
		if notable(&steps[i]) {
			note = append(note, i)
		} else {
			plain = append(plain, i)
		}
		size += len(steps[i].SpanID) + len(steps[i].Content)
	}
	var out []chunkRow
	for i, part := range [][]int{note, plain} {
		if len(part) == 0 {
			continue
		}
		ids := make([]byte, 0, len(part)*17)
		for _, j := range part {
			ids = appendSpanID(ids, steps[j].SpanID)
		}
		n := steps[part[0]].N
		out = append(out, chunkRow{key: k, chunk: n, notable: i == 0, steps: len(part), spanIDs: ids,
			body: encodeStepsAt(make([]byte, 0, len(part)*48+size), n, steps, part)})
	}
	return out
}

// head is what a write reads, and locks, of a session's row.
type head struct {
	LastSeq  int64 `db:"last_seq"`
	StepRows bool  `db:"step_rows"`
}

// lastSeqs reads, and on PostgreSQL locks, the last step number of each
// session of a write (groups), in ID order as ensureSessions created them,
// and whether it has steps stored as rows (from before step_chunks).
func (q *queries) lastSeqs(ctx context.Context, groups []stepGroup) (map[sessions.Key]head, error) {
	ks := make([]sessions.Key, len(groups))
	for i, g := range groups {
		ks[i] = g.key
	}
	out := make(map[sessions.Key]head, len(ks))
	for start := 0; start < len(ks); start += keyChunk {
		chunk := ks[start:min(start+keyChunk, len(ks))]
		args := make([]any, 0, 2*len(chunk))
		for _, k := range chunk {
			args = append(args, k.Agent, k.ID)
		}
		var rows []struct {
			Agent string `db:"agent"`
			ID    string `db:"id"`
			head
		}
		query := `SELECT agent, id, last_seq, step_rows FROM sessions WHERE ` + orKeys("agent", "id", len(chunk)) +
			` ORDER BY agent, id` + q.forUpdate()
		var err error
		if len(chunk) == 1 {
			err = q.sel(ctx, &rows, query, args...)
		} else {
			err = sqlxSelect(ctx, q, &rows, query, args...)
		}
		if err != nil {
			return nil, wrap(err, "number the steps of %d sessions", len(ks))
		}
		for _, r := range rows {
			out[sessions.Key{Agent: r.Agent, ID: r.ID}] = r.head
		}
	}
	return out, nil
}

// orKeys is "(a = ? AND b = ?) OR …", n times.
func orKeys(a, b string, n int) string {
	var s strings.Builder
	for i := range n {
		if i > 0 {
			s.WriteString(" OR ")
		}
		s.WriteString("(" + a + " = ? AND " + b + " = ?)")
	}
	return s.String()
}

// storedSpans says which steps (by index) their session already holds: a
// session with numbered steps has chunks, whose span IDs are read, and one
// with steps from before step_chunks has rows, looked up by span ID.
func (q *queries) storedSpans(ctx context.Context, steps []sessions.Step, groups []stepGroup, heads map[sessions.Key]head) ([]bool, error) {
	stored := make([]bool, len(steps))
	var chunked []stepGroup
	for _, g := range groups {
		h := heads[g.key]
		if h.LastSeq > 0 {
			chunked = append(chunked, g)
		}
		if h.StepRows {
			if err := q.storedRows(ctx, steps, g, stored); err != nil {
				return nil, err
			}
		}
	}
	for start := 0; start < len(chunked); start += keyChunk {
		part := chunked[start:min(start+keyChunk, len(chunked))]
		want := make(map[sessions.Key]map[string]int, len(part))
		args := make([]any, 0, 2*len(part))
		for _, g := range part {
			m := make(map[string]int, len(g.at))
			for _, at := range g.at {
				m[steps[at].SpanID] = at
			}
			want[g.key] = m
			args = append(args, g.key.Agent, g.key.ID)
		}
		query := `SELECT agent, session_id, span_ids FROM step_chunks WHERE ` + orKeys("agent", "session_id", len(part))
		var rows *sql.Rows
		var err error
		if len(part) == 1 {
			rows, err = q.query(ctx, query, args...)
		} else {
			rows, err = q.x.QueryContext(ctx, q.x.Rebind(query), args...)
		}
		if err != nil {
			return nil, wrap(err, "read the stored span IDs of %d sessions", len(part))
		}
		var agent, session string
		var ids []byte
		for rows.Next() {
			if err := rows.Scan(&agent, &session, &ids); err != nil {
				rows.Close()
				return nil, wrap(err, "read the stored span IDs of %d sessions", len(part))
			}
			m := want[sessions.Key{Agent: agent, ID: session}]
			if err := eachSpanID(ids, func(id []byte) {
				if at, ok := m[string(id)]; ok {
					stored[at] = true
				}
			}); err != nil {
				rows.Close()
				return nil, wrap(err, "read the stored span IDs of session %s of %s", session, agent)
			}
		}
		if err := rows.Close(); err != nil {
			return nil, wrap(err, "read the stored span IDs of %d sessions", len(part))
		}
		if err := rows.Err(); err != nil {
			return nil, wrap(err, "read the stored span IDs of %d sessions", len(part))
		}
	}
	return stored, nil
}

// storedRows marks the steps of g that are stored as rows of session_steps.
func (q *queries) storedRows(ctx context.Context, steps []sessions.Step, g stepGroup, stored []bool) error {
	for start := 0; start < len(g.at); start += idChunk {
		part := g.at[start:min(start+idChunk, len(g.at))]
		at := make(map[string]int, len(part))
		args := make([]any, 0, 2+len(part))
		args = append(args, g.key.Agent, g.key.ID)
		for _, i := range part {
			at[steps[i].SpanID] = i
			args = append(args, steps[i].SpanID)
		}
		var ids []string
		if err := sqlxSelect(ctx, q, &ids, `SELECT span_id FROM session_steps WHERE agent = ? AND session_id = ?
			AND span_id IN (`+marks(len(part))+`)`, args...); err != nil {
			return wrap(err, "find stored steps of session %s", g.key)
		}
		for _, id := range ids {
			stored[at[id]] = true
		}
	}
	return nil
}

// stepChunkRows bounds the rows of one INSERT into step_chunks.
const stepChunkRows = 500

// insertChunks writes chunk rows; a write of one session's (one or two
// rows, the usual) reuses a prepared statement.
func (q *queries) insertChunks(ctx context.Context, rows []chunkRow) error {
	for start := 0; start < len(rows); start += stepChunkRows {
		part := rows[start:min(start+stepChunkRows, len(rows))]
		var b strings.Builder
		b.WriteString(`INSERT INTO step_chunks (agent, session_id, chunk, notable, steps, span_ids, body) VALUES `)
		args := make([]any, 0, 7*len(part))
		for i, r := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, r.key.Agent, r.key.ID, r.chunk, r.notable, r.steps, r.spanIDs, r.body)
		}
		var err error
		if len(part) <= 2 {
			_, err = q.exec(ctx, b.String(), args...)
		} else {
			_, err = q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...)
		}
		if err != nil {
			return wrap(err, "insert %d step chunks", len(part))
		}
	}
	return nil
}

// stepKey is a stored step's identity: its session's (agent, ID) and its span.
type stepKey struct{ agent, session, span string }

// uniqueSteps drops repeats of a span within one batch, keeping the first,
// and says for each step of steps which of the result it is.
func uniqueSteps(steps []sessions.Step) (out []sessions.Step, from []int) {
	out = make([]sessions.Step, 0, len(steps))
	from = make([]int, len(steps))
	// Usually a request is of one session: its span IDs alone tell repeats.
	one := true
	for i := 1; i < len(steps) && one; i++ {
		one = steps[i].Agent == steps[0].Agent && steps[i].Session == steps[0].Session
	}
	if one {
		seen := make(map[string]int, len(steps))
		for j, st := range steps {
			if i, ok := seen[st.SpanID]; ok {
				from[j] = i
				continue
			}
			seen[st.SpanID] = len(out)
			from[j] = len(out)
			out = append(out, st)
		}
		return out, from
	}
	seen := make(map[stepKey]int, len(steps))
	for j, st := range steps {
		k := stepKey{st.Agent, st.Session, st.SpanID}
		if i, ok := seen[k]; ok {
			from[j] = i
			continue
		}
		seen[k] = len(out)
		from[j] = len(out)
		out = append(out, st)
	}
	return out, from
}

// ensureSessions creates the totals rows the steps need (groups, in
// (agent, ID) order, so concurrent writers lock them in the same order). A
// new session was first and last seen when its first step arrived.
func (q *queries) ensureSessions(ctx context.Context, steps []sessions.Step, groups []stepGroup) error {
	ks := make([]sessions.Key, len(groups))
	first := make(map[sessions.Key]sessions.Step, len(groups))
	for i, g := range groups {
		ks[i] = g.key
		f := steps[g.at[0]]
		for _, at := range g.at[1:] {
			if steps[at].Arrival().Before(f.Arrival()) {
				f = steps[at]
			}
		}
		first[g.key] = f
	}
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
	var err error
	if len(ks) == 1 { // the usual request: one statement, prepared once
		_, err = q.exec(ctx, b.String(), args...)
	} else {
		_, err = q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...)
	}
	if err != nil {
		return wrap(err, "create session rows")
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
	return q.findSession(ctx, agent, id, false)
}

// FindNotable returns a session's totals and its tool calls and errors.
func (q *queries) FindNotable(ctx context.Context, agent, id string) (sessions.Record, error) {
	return q.findSession(ctx, agent, id, true)
}

func (q *queries) boolTrue() string {
	if q.s.d == migrations.SQLite {
		return "1"
	}
	return "TRUE"
}

// findSession reads a session's chunks (only its notable ones with
// onlyNotable), and its rows from before step_chunks when it has some, and
// sorts the steps as the rows were: by start, then span ID.
func (q *queries) findSession(ctx context.Context, agent, id string, onlyNotable bool) (sessions.Record, error) {
	var rows []struct {
		totalsRow
		StepRows bool `db:"step_rows"`
	}
	if err := q.sel(ctx, &rows, `SELECT `+totalsCols+`, step_rows FROM sessions WHERE agent = ? AND id = ?`, agent, id); err != nil {
		return sessions.Record{}, wrap(err, "find session %s of %s", id, agent)
	}
	if len(rows) == 0 {
		return sessions.Record{}, sessions.ErrNotFound
	}
	rec := sessions.Record{Totals: rows[0].totals()}
	query := `SELECT chunk, steps, body FROM step_chunks WHERE agent = ? AND session_id = ?`
	if onlyNotable {
		query += ` AND notable`
	}
	var chunks []struct {
		Chunk int64  `db:"chunk"`
		Steps int    `db:"steps"`
		Body  []byte `db:"body"`
	}
	if err := q.sel(ctx, &chunks, query, agent, id); err != nil {
		return sessions.Record{}, wrap(err, "find steps of session %s of %s", id, agent)
	}
	n := 0
	for _, c := range chunks {
		n += c.Steps
	}
	rec.Steps = make([]sessions.Step, 0, n)
	for _, c := range chunks {
		before := len(rec.Steps)
		var err error
		if rec.Steps, err = decodeSteps(rec.Steps, agent, id, c.Chunk, c.Body); err != nil {
			return sessions.Record{}, err
		}
		if len(rec.Steps)-before != c.Steps {
			return sessions.Record{}, fmt.Errorf("step chunk %d of session %s of %s: %d steps decoded, %d stored",
				c.Chunk, id, agent, len(rec.Steps)-before, c.Steps)
		}
	}
	if rows[0].StepRows {
		where := ""
		if onlyNotable {
			where = ` AND (tool <> '' OR kind = 'execute_tool' OR error = ` + q.boolTrue() + `)`
		}
		var err error
		if rec.Steps, err = q.stepRows(ctx, rec.Steps, agent, id, where); err != nil {
			return sessions.Record{}, err
		}
	}
	slices.SortFunc(rec.Steps, func(a, b sessions.Step) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID, b.SpanID)
	})
	return rec, nil
}

// stepRows appends a session's steps stored as rows (before step_chunks).
func (q *queries) stepRows(ctx context.Context, out []sessions.Step, agent, id, where string) ([]sessions.Step, error) {
	var steps []stepRow
	if err := q.sel(ctx, &steps, `SELECT `+stepCols+` FROM session_steps WHERE agent = ? AND session_id = ?`+where,
		agent, id); err != nil {
		return out, wrap(err, "find steps of session %s of %s", id, agent)
	}
	for _, r := range steps {
		st := sessions.Step{Session: r.Session, SpanID: r.SpanID, TraceID: r.TraceID, ParentID: r.ParentID,
			Agent: r.Agent, Start: r.Start.T, Duration: time.Duration(r.DurationUS) * time.Microsecond,
			Kind: r.Kind, Name: r.Name, Tool: r.Tool, Model: r.Model, InputTokens: r.InputTokens,
			OutputTokens: r.OutputTokens, Cost: r.Cost, Priced: r.Priced, Error: r.Error,
			ErrorType: r.ErrorType, System: r.System, Content: r.Content, ArgsHash: r.ArgsHash,
			Received: r.Received.T, N: r.Seq}
		if err := unjs(r.Scores, &st.Scores, "step scores"); err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
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

// DeleteSteps removes stored steps of a session; its totals keep counting
// them. A chunk holding some is rewritten without them (deleted when it
// holds nothing else), under the session row's lock a write takes.
func (s *Store) DeleteSteps(ctx context.Context, agent, session string, spanIDs []string) error {
	drop := make(map[string]bool, len(spanIDs))
	for _, id := range spanIDs {
		drop[id] = true
	}
	return s.inTx(ctx, func(q *queries) error {
		var heads []head
		if err := q.sel(ctx, &heads, `SELECT last_seq, step_rows FROM sessions WHERE agent = ? AND id = ?`+q.forUpdate(),
			agent, session); err != nil {
			return wrap(err, "drop steps of session %s", session)
		}
		if len(heads) == 0 {
			return nil
		}
		n, err := q.dropFromChunks(ctx, agent, session, drop)
		if err != nil {
			return err
		}
		for start := 0; heads[0].StepRows && start < len(spanIDs); start += idChunk {
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

// dropFromChunks cuts the steps of drop out of a session's chunks and
// returns how many it cut.
func (q *queries) dropFromChunks(ctx context.Context, agent, session string, drop map[string]bool) (int64, error) {
	var chunks []struct {
		Chunk   int64  `db:"chunk"`
		SpanIDs []byte `db:"span_ids"`
	}
	if err := q.sel(ctx, &chunks, `SELECT chunk, span_ids FROM step_chunks WHERE agent = ? AND session_id = ?`,
		agent, session); err != nil {
		return 0, wrap(err, "drop steps of session %s", session)
	}
	var n int64
	for _, c := range chunks {
		hits, total := 0, 0
		if err := eachSpanID(c.SpanIDs, func(id []byte) {
			total++
			if drop[string(id)] {
				hits++
			}
		}); err != nil {
			return 0, wrap(err, "drop steps of session %s", session)
		}
		if hits == 0 {
			continue
		}
		n += int64(hits)
		if hits == total {
			if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM step_chunks WHERE agent = ? AND session_id = ? AND chunk = ?`),
				agent, session, c.Chunk); err != nil {
				return 0, wrap(err, "drop steps of session %s", session)
			}
			continue
		}
		var body []byte
		if err := sqlx.GetContext(ctx, q.x, &body, q.x.Rebind(`SELECT body FROM step_chunks WHERE agent = ? AND session_id = ? AND chunk = ?`),
			agent, session, c.Chunk); err != nil {
			return 0, wrap(err, "drop steps of session %s", session)
		}
		steps, err := decodeSteps(nil, agent, session, c.Chunk, body)
		if err != nil {
			return 0, err
		}
		steps = slices.DeleteFunc(steps, func(st sessions.Step) bool { return drop[st.SpanID] })
		if _, err := q.x.ExecContext(ctx, q.x.Rebind(`UPDATE step_chunks SET steps = ?, span_ids = ?, body = ?
			WHERE agent = ? AND session_id = ? AND chunk = ?`), len(steps), appendSpanIDs(nil, steps),
			encodeSteps(nil, c.Chunk, steps), agent, session, c.Chunk); err != nil {
			return 0, wrap(err, "drop steps of session %s", session)
		}
	}
	return n, nil
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
			for _, table := range []string{"step_chunks", "session_steps"} {
				if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM `+table+` WHERE agent = ? AND session_id IN (`+
					marks(len(chunk))+`)`), args...); err != nil {
					return err
				}
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
