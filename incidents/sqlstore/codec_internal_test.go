package sqlstore

import (
	"encoding/json"
	"testing"

	"github.com/reins-oss/reins/incidents"
)

// js encodes labels, sessions and links by hand; the bytes must be
// encoding/json's, since stored sessions and links are compared as text to
// tell a pure repeat.
func FuzzJSEncodesAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\tnew\nline\r", "\b\f\x00\x1f\x7f",
		"ünïcode ✓", "bad \xff utf8", "line\u2028sep\u2029", "https://grafana.example.com/d/x?from=now-1h&to=now"} {
		f.Add(s, s+"-2")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, v := range []any{
			map[string]string{a: b, b: a, "k": a}, map[string]string{}, map[string]string(nil),
			[]string{a, b}, []string{}, []string(nil),
			[]incidents.Link{{Text: a, URL: b}, {Text: b}}, []incidents.Link{}, []incidents.Link(nil),
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			switch string(want) {
			case "null":
				want = []byte("[]")
				if _, ok := v.(map[string]string); ok {
					want = []byte("{}")
				}
			}
			if got := js(v); got != string(want) {
				t.Errorf("js(%#v)\n got %s\nwant %s", v, got, want)
			}
		}
	})
}
