package sqlstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
)

// A step chunk's body (step_chunks.body) is its steps one after another in
// a binary form built for this table: a chunk is written once per request
// and read whole, and its steps share most strings with the step before
// (trace, parent, kind, model), so a string equal to the previous step's
// same field costs one byte and decodes without allocating. Times are
// microseconds (what either dialect kept of a row's time), numbers varints,
// cost its float64 bits: a step decodes to what its row read back gave.
// Session and agent are the row's; Judged and HeldIn are not stored.
//
//	body    = version(1) step*
//	step    = str(span) str(trace) str(parent) svarint(start - prev start)
//	          uvarint(duration µs) str(kind) str(name) str(tool) str(model)
//	          uvarint(input) uvarint(output) float64(cost) flags
//	          str(error type) str(system) str(content) str(args hash) scores
//	          svarint(received - prev received) uvarint(n - prev n)
//	str     = uvarint(0): as the previous step's | uvarint(len+1) bytes
//	scores  = uvarint(count) (str(name) float64)*
//
// prev n of the first step is the chunk's number (step_chunks.chunk); the
// first step's previous times are 0.
const stepCodecVersion = 1

const (
	flagPriced = 1 << iota
	flagError
)

// encodeSteps appends the body of a chunk of steps. Numbers are kept as
// differences, the first from chunk: a body encoded with numbers relative
// to the write (1, 2, …) holds for any base, which lets a write encode its
// steps before the transaction that numbers them.
func encodeSteps(b []byte, chunk int64, steps []sessions.Step) []byte {
	return encodeStepsAt(b, chunk, steps, nil)
}

// encodeStepsAt is encodeSteps of the steps at indexes at (all with nil),
// without copying them.
func encodeStepsAt(b []byte, chunk int64, steps []sessions.Step, at []int) []byte {
	b = append(b, stepCodecVersion)
	prev := &sessions.Step{}
	prevN := chunk
	var prevStart, prevRecv int64
	n := len(steps)
	if at != nil {
		n = len(at)
	}
	for i := range n {
		st := &steps[i]
		if at != nil {
			st = &steps[at[i]]
		}
		b = putStr(b, st.SpanID, prev.SpanID, i)
		b = putStr(b, st.TraceID, prev.TraceID, i)
		b = putStr(b, st.ParentID, prev.ParentID, i)
		start := micros(st.Start)
		b = binary.AppendVarint(b, start-prevStart)
		b = binary.AppendUvarint(b, uint64(st.Duration.Microseconds()))
		b = putStr(b, st.Kind, prev.Kind, i)
		b = putStr(b, st.Name, prev.Name, i)
		b = putStr(b, st.Tool, prev.Tool, i)
		b = putStr(b, st.Model, prev.Model, i)
		b = binary.AppendVarint(b, st.InputTokens)
		b = binary.AppendVarint(b, st.OutputTokens)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.Cost))
		var flags byte
		if st.Priced {
			flags |= flagPriced
		}
		if st.Error {
			flags |= flagError
		}
		b = append(b, flags)
		b = putStr(b, st.ErrorType, prev.ErrorType, i)
		b = putStr(b, st.System, prev.System, i)
		b = putStr(b, st.Content, prev.Content, i)
		b = putStr(b, st.ArgsHash, prev.ArgsHash, i)
		b = binary.AppendUvarint(b, uint64(len(st.Scores)))
		if len(st.Scores) > 0 {
			names := make([]string, 0, len(st.Scores))
			for k := range st.Scores {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				b = binary.AppendUvarint(b, uint64(len(k))+1)
				b = append(b, k...)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.Scores[k]))
			}
		}
		recv := micros(st.Arrival())
		b = binary.AppendVarint(b, recv-prevRecv)
		b = binary.AppendVarint(b, st.N-prevN)
		prev, prevN, prevStart, prevRecv = st, st.N, start, recv
	}
	return b
}

// micros is t as the store keeps it: UTC microseconds.
func micros(t time.Time) int64 { return t.UTC().Truncate(time.Microsecond).UnixMicro() }

func putStr(b []byte, s, prev string, i int) []byte {
	if i > 0 && s == prev {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

var errStepBody = errors.New("corrupt step chunk")

// decodeSteps appends the steps of a chunk's body to out.
func decodeSteps(out []sessions.Step, agent, session string, chunk int64, b []byte) ([]sessions.Step, error) {
	if len(b) == 0 || b[0] != stepCodecVersion {
		return out, fmt.Errorf("step chunk %d of session %s: unknown version", chunk, session)
	}
	d := stepReader{b: b[1:]}
	var prev sessions.Step
	prevN := chunk
	var prevStart, prevRecv int64
	for first := true; len(d.b) > 0 && d.err == nil; first = false {
		st := sessions.Step{Session: session, Agent: agent}
		st.SpanID = d.str(prev.SpanID, first)
		st.TraceID = d.str(prev.TraceID, first)
		st.ParentID = d.str(prev.ParentID, first)
		prevStart += d.varint()
		st.Start = time.UnixMicro(prevStart).UTC()
		st.Duration = time.Duration(d.uvarint()) * time.Microsecond
		st.Kind = d.str(prev.Kind, first)
		st.Name = d.str(prev.Name, first)
		st.Tool = d.str(prev.Tool, first)
		st.Model = d.str(prev.Model, first)
		st.InputTokens = d.varint()
		st.OutputTokens = d.varint()
		st.Cost = d.float()
		flags := d.byte()
		st.Priced, st.Error = flags&flagPriced != 0, flags&flagError != 0
		st.ErrorType = d.str(prev.ErrorType, first)
		st.System = d.str(prev.System, first)
		st.Content = d.str(prev.Content, first)
		st.ArgsHash = d.str(prev.ArgsHash, first)
		if n := d.uvarint(); n > 0 && d.err == nil {
			if n > uint64(len(d.b)) {
				d.err = errStepBody
				break
			}
			st.Scores = make(map[string]float64, n)
			for range n {
				k := d.str("", true)
				st.Scores[k] = d.float()
			}
		}
		prevRecv += d.varint()
		st.Received = time.UnixMicro(prevRecv).UTC()
		prevN += d.varint()
		st.N = prevN
		if d.err != nil {
			break
		}
		out = append(out, st)
		prev = st
	}
	if d.err != nil {
		return out, fmt.Errorf("step chunk %d of session %s: %w", chunk, session, d.err)
	}
	return out, nil
}

type stepReader struct {
	b   []byte
	err error
}

func (d *stepReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stepReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stepReader) float() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *stepReader) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// str reads a string; 0 (not allowed for the first step) repeats prev.
func (d *stepReader) str(prev string, first bool) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n == 0 {
		if first {
			d.fail()
		}
		return prev
	}
	n--
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *stepReader) fail() {
	if d.err == nil {
		d.err = errStepBody
	}
}

// appendSpanIDs appends the span IDs of steps as step_chunks.span_ids
// holds them: each after its length.
func appendSpanIDs(b []byte, steps []sessions.Step) []byte {
	for i := range steps {
		b = appendSpanID(b, steps[i].SpanID)
	}
	return b
}

func appendSpanID(b []byte, id string) []byte {
	b = binary.AppendUvarint(b, uint64(len(id)))
	return append(b, id...)
}

// eachSpanID calls fn with each span ID of a span_ids value, as bytes that
// are only valid during the call (a map lookup with string(id) does not
// allocate).
func eachSpanID(b []byte, fn func(id []byte)) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errStepBody
		}
		fn(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return nil
}

// notable says whether a step is one FindNotable returns: a tool call or
// an error (the filter FindNotable applied to step rows).
func notable(st *sessions.Step) bool { return st.IsTool() || st.Error }
