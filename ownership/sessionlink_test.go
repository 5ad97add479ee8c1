package ownership_test

import (
	"testing"

	"github.com/reins-oss/reins/ownership"
)

const langfuse = "https://langfuse.example.com/project/p1/sessions/{session}"

func TestSessionLink(t *testing.T) {
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
		{"QueryEscapedAfterQuestionMark", "https://x.example/audit?session={session}", "a&b c", "https://x.example/audit?session=a%26b+c"},
		{"EachPlaceholderForWhereItStands", "https://x.example/{session}?s={session}", "a&b", "https://x.example/a&b?s=a%26b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownership.SessionLink(tt.template, tt.session); got != tt.want {
				t.Errorf("SessionLink(%q, %q) = %q, want %q", tt.template, tt.session, got, tt.want)
			}
		})
	}
}
