package incidents_test

import (
	"slices"
	"testing"

	"github.com/reins-oss/reins/incidents"
)

func TestParseActionItems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []incidents.ActionItem
	}{
		{"OK", "alice: fix it (due 2026-03-09)", []incidents.ActionItem{{Owner: "alice", Text: "fix it", Due: "2026-03-09"}}},
		{"ListMarkers", "- a: one\n* b: two\n1. c: three\n2) d: four",
			[]incidents.ActionItem{{"a", "one", ""}, {"b", "two", ""}, {"c", "three", ""}, {"d", "four", ""}}},
		{"NoOwner", "write the runbook (due 2026-04-01)", []incidents.ActionItem{{Text: "write the runbook", Due: "2026-04-01"}}},
		{"URLIsNotAnOwner", "see https://x.example.com/a", []incidents.ActionItem{{Text: "see https://x.example.com/a"}}},
		{"DueWithColon", "@sre-team: rotate keys (due: 2026-05-01)", []incidents.ActionItem{{"@sre-team", "rotate keys", "2026-05-01"}}},
		{"BlankLinesSkipped", "\n\n  \nx: y\n", []incidents.ActionItem{{Owner: "x", Text: "y"}}},
		{"Empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := incidents.ParseActionItems(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
