package traces_test

import (
	"reflect"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/traces"
)

const langfuse = "https://langfuse.example.com/project/p1/sessions/{session}"

func TestLink(t *testing.T) {
	tests := []struct {
		name, template, session, want string
	}{
		{"OK", langfuse, "s-8812", "https://langfuse.example.com/project/p1/sessions/s-8812"},
		{"EmptyTemplate", "", "s-8812", ""},
		{"SlashEscaped", langfuse, "tenant/s-1", "https://langfuse.example.com/project/p1/sessions/tenant%2Fs-1"},
		{"SpaceEscaped", langfuse, "s 1", "https://langfuse.example.com/project/p1/sessions/s%201"},
		{"QuestionMarkEscaped", langfuse, "s-1?admin=1", "https://langfuse.example.com/project/p1/sessions/s-1%3Fadmin=1"},
		{"EveryPlaceholder", "https://x.example/{session}?audit={session}", "a/b", "https://x.example/a%2Fb?audit=a%2Fb"},
		{"NoPlaceholder", "https://x.example/sessions", "s-1", "https://x.example/sessions"},
		{"EmptySession", langfuse, "", "https://langfuse.example.com/project/p1/sessions/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := traces.Link(tt.template, tt.session); got != tt.want {
				t.Errorf("Link(%q, %q) = %q, want %q", tt.template, tt.session, got, tt.want)
			}
		})
	}
}

func TestLinks(t *testing.T) {
	tests := []struct {
		name     string
		template string
		sessions []string
		want     []incidents.Link
	}{
		{"OK", langfuse, []string{"s-1", "a/b c?"}, []incidents.Link{
			{Text: "s-1", URL: "https://langfuse.example.com/project/p1/sessions/s-1"},
			{Text: "a/b c?", URL: "https://langfuse.example.com/project/p1/sessions/a%2Fb%20c%3F"},
		}},
		{"EmptyTemplateKeepsSessions", "", []string{"s-1"}, []incidents.Link{{Text: "s-1", URL: ""}}},
		{"NoSessions", langfuse, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := traces.Links(tt.template, tt.sessions); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Links() = %#v, want %#v", got, tt.want)
			}
		})
	}
}
