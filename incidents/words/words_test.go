package words_test

import (
	"testing"

	"github.com/reins-oss/reins/incidents/words"
)

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n      int
		noun   string
		plural []string
		want   string
	}{
		{0, "attempt", nil, "0 attempts"},
		{1, "attempt", nil, "1 attempt"},
		{2, "attempt", nil, "2 attempts"},
		{1, "breach", nil, "1 breach"},
		{3, "breach", nil, "3 breaches"},
		{2, "entry", nil, "2 entries"},
		{2, "day", nil, "2 days"},
		{2, "person", []string{"people"}, "2 people"},
		{1, "person", []string{"people"}, "1 person"},
	} {
		if got := words.Count(tt.n, tt.noun, tt.plural...); got != tt.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
}

func TestArticle(t *testing.T) {
	for word, want := range map[string]string{
		"alertmanager alert": "an alertmanager alert",
		"generic alert":      "a generic alert",
		"grafana alert":      "a grafana alert",
		"SLA":                "an SLA",
		"URL":                "a URL",
		"hour":               "an hour",
		"unknown agent":      "an unknown agent",
		"user":               "a user",
		"langfuse alert":     "a langfuse alert",
		"otel-guard alert":   "an otel-guard alert",
	} {
		if got := words.Article(word); got != want {
			t.Errorf("Article(%q) = %q, want %q", word, got, want)
		}
	}
}
