package sqlstore

import (
	"slices"
	"strings"

	"github.com/reins-oss/reins/migrations"
)

// maxBulkRows is the most rows one bulk statement carries: 64 alerts of 17
// columns stay far below either database's limit on parameters.
const maxBulkRows = 64

// bulk is a statement over rows given as a VALUES list (the one %s of its
// text), which a CTE names v. A statement of n rows is padded with rows of
// NULLs up to a power of two, so each connection prepares at most seven
// shapes of it however batches vary; the statement must make padding rows
// match nothing, or filter them out (an INSERT selects WHERE n IS NOT NULL,
// n being the row's place, by which it also orders the rows it inserts).
type bulk struct {
	text string
	// cols has a letter a VALUES column: i integer, b boolean, t time, s text.
	// PostgreSQL types a VALUES list's parameters as text unless cast.
	cols string
	// more are the columns of further VALUES lists, for the further %s of
	// text, each with as many rows as the first.
	more []string
}

// paddedSize is the power of two at or above n (at most maxBulkRows).
func paddedSize(n int) int {
	size := 1
	for size < n && size < maxBulkRows {
		size *= 2
	}
	return size
}

// bulkShape names a bulk statement with its number of rows.
type bulkShape struct {
	b    *bulk
	rows int
}

// text is b's statement with n rows, built once per shape.
func (q *queries) text(b *bulk, n int) string {
	key := bulkShape{b, n}
	if cached, ok := q.s.bulkQueries.Load(key); ok {
		return cached.(string)
	}
	text := b.text
	for _, cols := range append([]string{b.cols}, b.more...) {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = "?"
			if q.s.d == migrations.Postgres {
				switch c {
				case 'i':
					cells[i] = "CAST(? AS bigint)"
				case 'b':
					cells[i] = "CAST(? AS boolean)"
				case 't':
					cells[i] = "CAST(? AS timestamptz)"
				}
			}
		}
		row := "(" + strings.Join(cells, ", ") + ")"
		text = strings.Replace(text, "%s", strings.TrimSuffix(strings.Repeat(row+", ", n), ", "), 1)
	}
	q.s.bulkQueries.Store(key, text)
	return text
}

// args returns the arguments of b's statement for rows, padded with NULLs:
// row(i, dst) appends row i's values, after its place where b inserts.
func (b *bulk) args(rows int, row func(i int, dst []any) []any) (n int, args []any) {
	n = paddedSize(rows)
	return n, padded(nil, len(b.cols), n, rows, row)
}

// padded appends to args rows rows of width values, made by row, then rows
// of NULLs up to n.
func padded(args []any, width, n, rows int, row func(i int, dst []any) []any) []any {
	start := len(args)
	args = slices.Grow(args, n*width)
	for i := range rows {
		args = row(i, args)
	}
	end := start + n*width
	clear(args[len(args):end])
	return args[:end]
}
