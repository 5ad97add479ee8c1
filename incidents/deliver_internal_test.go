package incidents

import (
	"errors"
	"strings"
	"testing"
)

func TestChannelName(t *testing.T) {
	tests := []struct {
		name, prefix, agent, title, want string
	}{
		{name: "OK", prefix: "inc", agent: "support-bot", title: "Token spend 12x baseline",
			want: "inc-42-support-bot-token-spend-12x-baseline"},
		{name: "Punctuation", prefix: "INC", agent: "Support_Bot", title: "  <b>Tool calls!!</b> outside scope ",
			want: "inc-42-support_bot-b-tool-calls-b-outside-scope"},
		{name: "EmptyPrefix", agent: "bot", title: "", want: "inc-42-bot"},
		{name: "Unicode", prefix: "inc", agent: "bot", title: "Überweisung fehlgeschlagen", want: "inc-42-bot-berweisung-fehlgeschlagen"},
		{name: "Long", prefix: "inc", agent: "support-bot", title: strings.Repeat("very long title ", 10),
			want: "inc-42-support-bot-very-long-title-very-long-title-very-long-title-very-long-tit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChannelName(tt.prefix, 42, tt.agent, tt.title)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if len(got) > 80 {
				t.Errorf("got %d characters, want at most 80", len(got))
			}
		})
	}
}

func FuzzChannelName(f *testing.F) {
	f.Add("inc", "support-bot", "Token spend 12x baseline")
	f.Add("", "", "")
	f.Add("INC", "ÄÖÜ", strings.Repeat("-", 200))
	f.Add("_", "0", "0")
	f.Add(strings.Repeat("0", 79), "0", "0")
	f.Fuzz(func(t *testing.T, prefix, agent, title string) {
		got := ChannelName(prefix, 7, agent, title)
		if len(got) > 80 || !strings.HasPrefix(got, slugOr(prefix)+"-7") {
			t.Fatalf("ChannelName(%q, 7, %q, %q) = %q", prefix, agent, title, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("ChannelName(%q, 7, %q, %q) = %q holds %q", prefix, agent, title, got, r)
			}
		}
	})
}

func slugOr(prefix string) string {
	s := Slug(prefix)
	if s = strings.Trim(s[:min(len(s), 20)], "-_"); s == "" {
		return "inc"
	}
	return s
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "UniqueViolation", err: errors.New(`pq: duplicate key value violates unique constraint "x"`), want: true},
		{name: "SQLiteBusy", err: errors.New("database is locked (5) (SQLITE_BUSY)"), want: true},
		{name: "StaleVersion", err: Errorf(ECONFLICT, "changed"), want: true},
		{name: "NotFound", err: Errorf(ENOTFOUND, "gone"), want: false},
		{name: "Other", err: errors.New("disk full"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryable(tt.err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// Every outbox kind is named by the system it touches: a PagerDuty step is
// never called a Slack step (the bury line used to say "Slack step page_ack").
func TestDescribeKindNamesTheSystem(t *testing.T) {
	pd := []string{KindPage, KindRepage, KindPageResolve, KindPageAck}
	slack := []string{KindCreateChannel, KindPostSummary, KindUpdateSummary, KindSetTopic, KindInvite, KindBookmark,
		KindAnnounce, KindPost, KindPostChecklistParent, KindPostChecklistItem, KindResolvedTopic,
		KindPostPostmortemParent, KindPostPostmortemQuestion, KindUploadPostmortem, KindReminder}
	for _, k := range pd {
		if d := describeKind(k); !strings.Contains(d, "PagerDuty") || strings.Contains(d, "Slack") || strings.Contains(d, "_") {
			t.Errorf("describeKind(%q) = %q, want a PagerDuty step in words", k, d)
		}
	}
	for _, k := range slack {
		if d := describeKind(k); !strings.Contains(d, "Slack") || strings.Contains(d, "_") {
			t.Errorf("describeKind(%q) = %q, want a Slack step in words", k, d)
		}
	}
}
