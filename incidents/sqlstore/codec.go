package sqlstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/migrations"
)

// timeLayout is how SQLite stores times: UTC with a fixed six fractional
// digits, so text order is time order. Six because PostgreSQL keeps
// microseconds: both stores hand back the same instant.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// t converts a time for the dialect: UTC, truncated to microseconds.
func (q *queries) t(v time.Time) any {
	v = v.UTC().Truncate(time.Microsecond)
	if q.s.d == migrations.SQLite {
		return v.Format(timeLayout)
	}
	return v
}

// nt is t for an optional time: nil stays NULL.
func (q *queries) nt(v *time.Time) any {
	if v == nil {
		return nil
	}
	return q.t(*v)
}

// now is the fallback for a time the caller left zero. The service passes
// its clock's time; this only keeps a NOT NULL column meaningful.
func orNow(v time.Time) time.Time {
	if v.IsZero() {
		return time.Now().UTC()
	}
	return v
}

// dbTime scans a time from either dialect: time.Time from PostgreSQL, text
// in timeLayout (or any RFC 3339) from SQLite.
type dbTime struct {
	T     time.Time
	Valid bool
}

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d = dbTime{}
	case time.Time:
		*d = dbTime{T: v.UTC(), Valid: true}
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time %q: %w", s, err)
	}
	*d = dbTime{T: t.UTC(), Valid: true}
	return nil
}

// ptr returns the time or nil when NULL.
func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.T
	return &t
}

// js encodes a list or object as JSON text. nil slices and maps become []
// and {} so readers never meet "null". Labels, sessions and links, written
// for every alert received, are encoded by hand, as encoding/json would
// encode them: reflection and its sorting of map keys were a tenth of
// recording a storm's repeats.
func js(v any) string {
	switch x := v.(type) {
	case map[string]string:
		keys := make([]string, 0, len(x))
		size := 2
		for k, v := range x {
			keys = append(keys, k)
			size += len(k) + len(v) + 6
		}
		slices.Sort(keys)
		b := make([]byte, 0, size)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, x[k])
		}
		return string(append(b, '}'))
	case []string:
		b := append(make([]byte, 0, 64), '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return string(append(b, ']'))
	case []incidents.Link:
		b := append(make([]byte, 0, 128), '[')
		for i, l := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"text":`...)
			b = appendJSONString(b, l.Text)
			b = append(b, `,"url":`...)
			b = appendJSONString(b, l.URL)
			b = append(b, '}')
		}
		return string(append(b, ']'))
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only values that cannot be JSON (channels, funcs) fail, and the
		// domain types hold none: an empty value is the honest fallback.
		return ""
	}
	switch string(b) {
	case "null":
		switch v.(type) {
		case map[string]string:
			return "{}"
		case json.RawMessage:
			return ""
		}
		return "[]"
	}
	return string(b)
}

// appendJSONString appends s as encoding/json encodes a string. A string of
// printable ASCII that needs no escape (HTML's <, > and & included, which
// encoding/json escapes) is copied; any other is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// raw stores a JSON document as given ("" for none).
func raw(m json.RawMessage) string { return string(m) }

// unraw is the reverse of raw: "" reads back as nil.
func unraw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// unjs decodes JSON text into dst. Empty text, [] and {} leave dst nil, so
// what was stored from nil reads back as nil.
func unjs(s string, dst any, what string) error {
	if s == "" || s == "[]" || s == "{}" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// actorJSON and unactor store an Actor.
func actorJSON(a incidents.Actor) string { return js(a) }

func unactor(s, what string) (incidents.Actor, error) {
	var a incidents.Actor
	err := unjs(s, &a, what)
	return a, err
}
