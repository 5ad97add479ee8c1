package sqlstore

import (
	"fmt"
	"strings"
)

// maxBulkRows is the most rows one bulk statement carries: 64 alerts of 17
// columns stay far below either database's limit on parameters.
const maxBulkRows = 64

// bulkSizes cuts n rows into chunks whose sizes are powers of two, largest
// first, so every bulk statement has one of seven shapes, each prepared
// once per connection, however the batches vary: 13 rows are 8, 4 and 1.
func bulkSizes(n int) []int {
	var out []int
	for size := maxBulkRows; n > 0; size /= 2 {
		for n >= size {
			out = append(out, size)
			n -= size
		}
	}
	return out
}

// paddedSize is the power of two at or above n (at most maxBulkRows), for a
// statement that pads its rows with NULLs that match nothing.
func paddedSize(n int) int {
	size := 1
	for size < n && size < maxBulkRows {
		size *= 2
	}
	return size
}

// bulkShape names a bulk statement with its number of rows.
type bulkShape struct {
	query, row string
	rows       int
}

// bulkQuery is query, whose one %s takes the VALUES rows, with n copies of
// row, built once per shape.
func (q *queries) bulkQuery(query, row string, n int) string {
	key := bulkShape{query, row, n}
	if cached, ok := q.s.bulkQueries.Load(key); ok {
		return cached.(string)
	}
	text := fmt.Sprintf(query, strings.TrimSuffix(strings.Repeat(row+", ", n), ", "))
	q.s.bulkQueries.Store(key, text)
	return text
}
