package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"OK":              {"Token spend 12x baseline", "Token spend 12x baseline"},
		"Entities":        {"a & b < c > d", "a &amp; b &lt; c &gt; d"},
		"LinkShownAsText": {"<http://evil|click>", "&lt;http://evil|click&gt;"},
		"ChannelMention":  {"<!channel> now", "&lt;!\u2060channel&gt; now"},
		"HereMention":     {"ping @here and @Everyone", "ping @\u2060here and @\u2060Everyone"},
		"UserMention":     {"<@U123>", "&lt;@U123&gt;"},
		"BoldKept":        {"*bold*", "*bold*"},
		"ControlStripped": {"a\x00b\x1bc\u202ed\r\ne", "abcd\ne"},
		"InvalidUTF8":     {"a\xffb", "a\uFFFDb"},
		"NotABroadcast":   {"@channels and email@here.com", "@channels and email@\u2060here.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Escape(tc.in); got != tc.want {
				t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"OK":          {"support-bot: spike", "support-bot: spike"},
		"OneLine":     {"a\n\tb   c", "a b c"},
		"NoEntities":  {"a & <b>", "a & <b>"},
		"NoBroadcast": {"@channel", "@\u2060channel"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := PlainText(tc.in); got != tc.want {
				t.Errorf("PlainText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		max  int
		want string
	}{
		"Fits":       {"abc", 3, "abc"},
		"Cut":        {"abcdef", 4, "abc…"},
		"Runes":      {"ééééé", 3, "éé…"},
		"TrimsSpace": {"ab   cdef", 5, "ab…"},
		"Zero":       {"abc", 0, ""},
	} {
		t.Run(name, func(t *testing.T) {
			got := Truncate(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if utf8.RuneCountInString(got) > tc.max {
				t.Errorf("len %d > %d", utf8.RuneCountInString(got), tc.max)
			}
		})
	}
}

func TestTruncateEscaped(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		max  int
		want string
	}{
		"Fits":          {"a &amp; b", 9, "a &amp; b"},
		"EntityKept":    {"ab &amp; cd", 10, "ab &amp;…"},
		"EntityDropped": {"ab &amp; cd", 7, "ab…"},
		"LinkDropped":   {"see <https://x.example/very/long|trace> now", 20, "see…"},
		"LinkKept":      {"<https://x|t> and more", 16, "<https://x|t> a…"},
	} {
		t.Run(name, func(t *testing.T) {
			got := TruncateEscaped(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("TruncateEscaped(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if utf8.RuneCountInString(got) > tc.max {
				t.Errorf("len %d > %d", utf8.RuneCountInString(got), tc.max)
			}
		})
	}
}

func TestSafeURLAndLink(t *testing.T) {
	for name, tc := range map[string]struct{ url, text, want string }{
		"OK":            {"https://langfuse.example.com/s/1?a=1&b=2", "s-1", "<https://langfuse.example.com/s/1?a=1&amp;b=2|s-1>"},
		"NoText":        {"https://x.example/", "", "<https://x.example/>"},
		"Javascript":    {"javascript:alert(1)", "click", "click"},
		"SlackScheme":   {"slack://open", "open", "open"},
		"PipeInURL":     {"https://x.example/a|b>c", "t", "<https://x.example/a%7Cb%3Ec|t>"},
		"TextEscaped":   {"https://x.example/", "<!here> a|b", "<https://x.example/|&lt;!\u2060here&gt; a¦b>"},
		"SpaceRejected": {"https://x.example/a b", "t", "t"},
		"Relative":      {"/incidents/1", "t", "t"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Link(tc.url, tc.text); got != tc.want {
				t.Errorf("Link(%q, %q) = %q, want %q", tc.url, tc.text, got, tc.want)
			}
		})
	}
}

func TestMention(t *testing.T) {
	for in, want := range map[string]string{
		"U01ALICE":          "<@U01ALICE>",
		"W123":              "<@W123>",
		"S0ONCALL":          "<!subteam^S0ONCALL>",
		"bob@example.com":   "bob@example.com",
		"<!channel>":        "&lt;!\u2060channel&gt;",
		"support-leads":     "support-leads",
		"u01lowercase":      "u01lowercase",
		"U01ALICE>|<!here>": "U01ALICE&gt;|&lt;!\u2060here&gt;",
	} {
		if got := Mention(in); got != want {
			t.Errorf("Mention(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChannelName(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"OK":         {"inc-42-support-bot-token-spike", "inc-42-support-bot-token-spike"},
		"Lowercased": {"INC-42-Support_Bot", "inc-42-support_bot"},
		"Specials":   {"inc 42: token spend 12x!! (prod)", "inc-42-token-spend-12x-prod"},
		"Unicode":    {"inc-1-café-bot", "inc-1-caf-bot"},
		"Long":       {strings.Repeat("ab-", 40), strings.TrimRight(strings.Repeat("ab-", 27), "-")},
		"Empty":      {"!!!", ""},
	} {
		t.Run(name, func(t *testing.T) {
			got := ChannelName(tc.in)
			if got != tc.want {
				t.Errorf("ChannelName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > 80 {
				t.Errorf("len %d > 80", len(got))
			}
		})
	}
}

func FuzzEscape(f *testing.F) {
	for _, seed := range []string{"<!channel>", "@here", "a & b", "<http://evil|click>", "\u202e@everyone", "ab &amp; cd"} {
		f.Add(seed, 10)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		got := Escape(s)
		if strings.ContainsAny(got, "<>") {
			t.Fatalf("Escape(%q) = %q keeps < or >", s, got)
		}
		if broadcast.MatchString(strings.ReplaceAll(got, wordJoiner, "")) && broadcast.MatchString(got) {
			t.Fatalf("Escape(%q) = %q keeps a broadcast", s, got)
		}
		if max < 0 || max > 5000 {
			return
		}
		cut := TruncateEscaped(got, max)
		if utf8.RuneCountInString(cut) > max {
			t.Fatalf("TruncateEscaped(%q, %d) = %q is too long", got, max, cut)
		}
		if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
			t.Fatalf("TruncateEscaped(%q, %d) = %q splits an entity", got, max, cut)
		}
	})
}
