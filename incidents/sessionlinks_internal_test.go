package incidents

import (
	"reflect"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

func TestSessionLinks(t *testing.T) {
	const langfuse = "https://langfuse.example.com/project/p1/sessions/{session}"
	tests := []struct {
		name     string
		agent    *ownership.Agent
		sessions []string
		want     []Link
	}{
		{"OK", &ownership.Agent{Sessions: ownership.SessionSettings{Link: langfuse}}, []string{"s-1", "a/b c?"}, []Link{
			{Text: "s-1", URL: "https://langfuse.example.com/project/p1/sessions/s-1"},
			{Text: "a/b c?", URL: "https://langfuse.example.com/project/p1/sessions/a%2Fb%20c%3F"},
		}},
		{"EmptyTemplateKeepsSessions", &ownership.Agent{}, []string{"s-1"}, []Link{{Text: "s-1", URL: ""}}},
		{"UnknownAgentKeepsSessions", nil, []string{"s-1"}, []Link{{Text: "s-1", URL: ""}}},
		{"NoSessions", &ownership.Agent{Sessions: ownership.SessionSettings{Link: langfuse}}, nil, []Link{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SessionLinks(tt.agent, tt.sessions); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SessionLinks() = %#v, want %#v", got, tt.want)
			}
		})
	}
}
