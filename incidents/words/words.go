// Package words writes counts and articles in English: "1 attempt", "3 breaches",
// "an alertmanager alert". Every user-facing message that counts or names a
// thing goes through it, so none says "1 attempts" or "a alertmanager".
package words

import (
	"strconv"
	"strings"
	"unicode"
)

// Count writes n with its noun, singular for one and plural otherwise:
// Count(1, "attempt") is "1 attempt", Count(3, "attempt") "3 attempts".
// Nouns whose plural is not the singular plus s give it: Count(2, "entry",
// "entries"). Every message that counts something says it through Count, so
// no "1 attempts" is left to chance.
func Count(n int, singular string, plural ...string) string {
	return strconv.Itoa(n) + " " + Noun(n, singular, plural...)
}

// Noun is the singular or the plural of a noun for n things, without n.
func Noun(n int, singular string, plural ...string) string {
	if n == 1 || n == -1 {
		return singular
	}
	if len(plural) > 0 {
		return plural[0]
	}
	switch {
	case strings.HasSuffix(singular, "s"), strings.HasSuffix(singular, "sh"), strings.HasSuffix(singular, "ch"),
		strings.HasSuffix(singular, "x"):
		return singular + "es"
	case strings.HasSuffix(singular, "y") && len(singular) > 1 && !strings.ContainsRune("aeiou", rune(singular[len(singular)-2])):
		return singular[:len(singular)-1] + "ies"
	}
	return singular + "s"
}

// Article puts "a" or "an" before word by how it is spoken: "an alertmanager
// alert", "a generic alert", "an SLA", "a Datadog monitor". It goes by the
// first letter, with the usual exceptions of initialisms spelt out.
func Article(word string) string {
	w := strings.TrimSpace(word)
	if w == "" {
		return word
	}
	if an(w) {
		return "an " + word
	}
	return "a " + word
}

func an(w string) bool {
	first := w
	if i := strings.IndexAny(w, " -_/"); i > 0 {
		first = w[:i]
	}
	lower := strings.ToLower(first)
	// Words spoken with a consonant sound despite the vowel.
	for _, p := range []string{"uni", "use", "usa", "one", "eu"} {
		if strings.HasPrefix(lower, p) {
			return false
		}
	}
	// Initialisms read letter by letter: "an SLA", "an HTTP", "a URL".
	if len(first) > 1 && isUpper(first) {
		return strings.ContainsRune("AEFHILMNORSX", rune(first[0]))
	}
	// Silent h.
	for _, p := range []string{"hour", "honest", "honour", "honor"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return strings.ContainsRune("aeiou", rune(lower[0]))
}

func isUpper(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) && !unicode.IsUpper(r) {
			return false
		}
	}
	return true
}
