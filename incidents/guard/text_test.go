package guard_test

import (
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents/guard"
)

// One breach is "1 breach", not "1 breaches".
func TestTextCountsBreaches(t *testing.T) {
	out := guard.Text("support-bot", []guard.SLAStatus{
		{SLA: "cost", Threshold: "≤ $5", Worst: "$6", Breaches: 1, OnBreach: "page"},
		{SLA: "loops", Threshold: "≤ 3", Worst: "4", Breaches: 2, OnBreach: "page"},
	})
	if !strings.Contains(out, "· 1 breach ·") || !strings.Contains(out, "· 2 breaches ·") || strings.Contains(out, "1 breaches") {
		t.Errorf("guard.Text:\n%s\nwant \"1 breach\" and \"2 breaches\"", out)
	}
}
