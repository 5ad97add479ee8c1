package otlp

import (
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/ownership"
)

// FuzzLimits feeds decoded requests, JSON and protobuf, through the caps
// and the mapping as the handler does: it must never panic; after limits no
// request holds more than the cap of spans nor a span more than the cap of
// attributes, and every span is either kept or counted rejected.
// The seed corpus is testdata/*.json and testdata/fuzz/FuzzLimits.
func FuzzLimits(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b, false)
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalJSON(b) == nil {
			if pb, err := req.MarshalProto(); err == nil {
				f.Add(pb, true)
			}
		}
	}
	const maxSpans, maxAttrs = 3, 4
	agent := &ownership.Agent{Name: "support-bot"}
	resolve := func(name string) *ownership.Agent {
		if name == "support-bot" {
			return agent
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, body []byte, proto bool) {
		req := ptraceotlp.NewExportRequest()
		var err error
		if proto {
			err = req.UnmarshalProto(body)
		} else {
			err = req.UnmarshalJSON(body)
		}
		if err != nil {
			return
		}
		td := req.Traces()
		before := td.SpanCount()
		rejected, _ := limits(td, maxSpans, maxAttrs)
		after := td.SpanCount()
		if after > maxSpans || after+rejected != before {
			t.Fatalf("%d spans, %d kept, %d rejected: cap %d", before, after, rejected, maxSpans)
		}
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			if n := rss.At(i).Resource().Attributes().Len(); n > maxAttrs {
				t.Fatalf("resource keeps %d attributes, cap %d", n, maxAttrs)
			}
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					if n := spans.At(k).Attributes().Len(); n > maxAttrs {
						t.Fatalf("span keeps %d attributes, cap %d", n, maxAttrs)
					}
				}
			}
		}
		res := Map(td, resolve)
		if len(res.Steps) > after {
			t.Fatalf("%d steps from %d spans", len(res.Steps), after)
		}
	})
}
