package alerts

import (
	"fmt"
	"testing"
)

// amDetail must encode exactly as details encodes the same values in a map:
// keys sorted, empty ones left out, nil when nothing is left.
func TestAMDetailEncodesAsItsMap(t *testing.T) {
	msg := func(receiver string, truncated int, orgID int64, values map[string]any) *amMessage {
		return &amMessage{Receiver: receiver, GroupKey: `{}:{agent="a"}`, ExternalURL: "http://am:9093", TruncatedAlerts: truncated, OrgID: orgID,
			Alerts: []amAlert{{ValueString: "[ var='B' value=13 ]", ImageURL: "https://img/1.png", Values: values}, {}}}
	}
	for _, tt := range []struct {
		name   string
		m      *amMessage
		source string
		i      int
	}{
		{"Alertmanager", msg("reins", 0, 0, nil), SourceAlertmanager, 0},
		{"Truncated", msg("reins", 5, 0, nil), SourceAlertmanager, 0},
		{"TruncatedSecond", msg("reins", 5, 0, nil), SourceAlertmanager, 1},
		{"Grafana", msg("reins", 0, 1, map[string]any{"B": 13.5, "C": 1}), SourceGrafana, 0},
		{"GrafanaEmpty", &amMessage{Alerts: []amAlert{{}}}, SourceGrafana, 0},
		{"Empty", &amMessage{Alerts: []amAlert{{}}}, SourceAlertmanager, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := &tt.m.Alerts[tt.i]
			want := map[string]any{"receiver": tt.m.Receiver, "group_key": tt.m.GroupKey, "external_url": tt.m.ExternalURL}
			if tt.source == SourceGrafana {
				want["org_id"], want["value_string"], want["image_url"] = tt.m.OrgID, in.ValueString, in.ImageURL
				if len(in.Values) > 0 {
					want["values"] = in.Values
				}
			}
			if tt.i == 0 && tt.m.TruncatedAlerts > 0 {
				want["truncated_alerts"] = tt.m.TruncatedAlerts
				want["note"] = fmt.Sprintf("%d more alerts of this group were left out by the sender (max_alerts); see %s",
					tt.m.TruncatedAlerts, firstOf(tt.m.ExternalURL, "the source"))
			}
			if got, want := string(amDetails(tt.m, tt.i, tt.source)), string(details(want)); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
