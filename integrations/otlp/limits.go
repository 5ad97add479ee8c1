package otlp

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Defaults of the intake's memory bounds (docs/config.md, REINS_OTLP_*).
const (
	// DefaultMaxInflightBytes is the in-flight byte budget all /v1/traces
	// requests share: decoding costs about 10 to 16 times the body, so 16
	// MiB of bodies in flight is about 250 MB at the peak.
	DefaultMaxInflightBytes = 16 << 20
	// DefaultMaxSpans caps the spans of one request; the excess is rejected
	// in partial_success.
	DefaultMaxSpans = 10_000
	// DefaultMaxAttributes caps the attributes of one span; the excess is
	// ignored and counted in partial_success's message.
	DefaultMaxAttributes = 128
)

// budgetChunk is how much of the budget a body reading past what it holds
// takes at a time: a gzip body's inflated size is unknown up front.
const budgetChunk = 256 << 10

// errBudget is answered 429 with Retry-After.
var errBudget = errors.New("in-flight byte budget exhausted")

// budget is the byte budget the requests in flight share. A request takes
// its share before its body is read: the body's declared length (the cap
// for a gzip or chunked body is taken as it inflates, chunk by chunk).
// Taking never waits: past the budget the exporter is told to retry.
type budget struct {
	mu   sync.Mutex
	max  int64
	used int64
}

// take reserves n bytes; false when that would pass the budget. A request
// alone may always take up to the whole budget, so a body the size of the
// budget is never refused forever.
func (b *budget) take(n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// InFlight says how many bytes requests hold now.
func (b *budget) InFlight() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// share is one request's part of the budget.
type share struct {
	b    *budget
	held int64
}

// grow makes the share at least n bytes.
func (s *share) grow(n int64) bool {
	if n <= s.held {
		return true
	}
	extra := max(n-s.held, budgetChunk)
	if !s.b.take(extra) {
		return false
	}
	s.held += extra
	return true
}

func (s *share) release() {
	s.b.give(s.held)
	s.held = 0
}

// budgetReader takes budget as the (inflated) body is read.
type budgetReader struct {
	r    io.Reader
	s    *share
	read int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	br.read += int64(n)
	if !br.s.grow(br.read) {
		return n, errBudget
	}
	return n, err
}

// limits caps a decoded request in place: spans beyond maxSpans are removed
// (rejected) and attributes beyond maxAttrs of a span or resource are
// removed (ignored, counted), before anything maps them.
func limits(td ptrace.Traces, maxSpans, maxAttrs int) (rejected, attrs int) {
	kept := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		attrs += capAttrs(rs.Resource().Attributes(), maxAttrs)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			spans.RemoveIf(func(sp ptrace.Span) bool {
				if kept >= maxSpans {
					rejected++
					return true
				}
				kept++
				attrs += capAttrs(sp.Attributes(), maxAttrs)
				return false
			})
		}
	}
	return rejected, attrs
}

// capAttrs keeps the first max attributes of m and says how many went.
func capAttrs(m pcommon.Map, max int) int {
	if m.Len() <= max {
		return 0
	}
	n, gone := 0, 0
	m.RemoveIf(func(string, pcommon.Value) bool {
		n++
		if n > max {
			gone++
			return true
		}
		return false
	})
	return gone
}

// limitReasons are partial_success's words for what limits cut.
func limitReasons(rejected, attrs, maxSpans, maxAttrs int) []string {
	var out []string
	if rejected > 0 {
		out = append(out, fmt.Sprintf("%d spans over the cap of %d per request were rejected (REINS_OTLP_MAX_SPANS): export smaller batches", rejected, maxSpans))
	}
	if attrs > 0 {
		out = append(out, fmt.Sprintf("%d attributes over the cap of %d per span or resource were ignored (REINS_OTLP_MAX_ATTRIBUTES)", attrs, maxAttrs))
	}
	return out
}
