package bot

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte("token=x&command=%2Fagent&text=status")
	verifier := Verifier{Secret: "s3cret", Now: func() time.Time { return now }}
	tests := map[string]struct {
		header http.Header
		body   []byte
		secret string
		want   error
	}{
		"OK":                 {header: Sign("s3cret", now, body), body: body},
		"OKFourMinutesOld":   {header: Sign("s3cret", now.Add(-4*time.Minute), body), body: body},
		"OKClockAhead":       {header: Sign("s3cret", now.Add(4*time.Minute), body), body: body},
		"ErrNoSignature":     {header: http.Header{}, body: body, want: ErrNoSignature},
		"ErrStale":           {header: Sign("s3cret", now.Add(-6*time.Minute), body), body: body, want: ErrStale},
		"ErrFuture":          {header: Sign("s3cret", now.Add(6*time.Minute), body), body: body, want: ErrStale},
		"ErrWrongSecret":     {header: Sign("other", now, body), body: body, want: ErrBadSignature},
		"ErrTamperedBody":    {header: Sign("s3cret", now, body), body: append([]byte("x"), body...), want: ErrBadSignature},
		"ErrEmptySecret":     {header: Sign("", now, body), body: body, secret: "-", want: ErrBadSignature},
		"ErrBadTimestamp":    {header: http.Header{headerTimestamp: {"soon"}, headerSignature: {"v0=00"}}, body: body, want: ErrBadTimestamp},
		"ErrNotHex":          {header: http.Header{headerTimestamp: {"1800000000"}, headerSignature: {"v0=zz"}}, body: body, want: ErrBadSignature},
		"ErrWrongVersion":    {header: http.Header{headerTimestamp: {"1800000000"}, headerSignature: {"v1=00"}}, body: body, want: ErrBadSignature},
		"ErrSignatureOnlyTS": {header: http.Header{headerTimestamp: {"1800000000"}}, body: body, want: ErrNoSignature},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := verifier
			if tc.secret == "-" {
				v.Secret = ""
			}
			if got := v.Verify(tc.header, tc.body); !errors.Is(got, tc.want) {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestVerifyKnownVector checks against the example in Slack's documentation
// on verifying requests.
func TestVerifyKnownVector(t *testing.T) {
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	h := http.Header{}
	h.Set(headerTimestamp, "1531420618")
	h.Set(headerSignature, "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	v := Verifier{Secret: "8f742231b10e8888abcd99yyyzzz85a5", Now: func() time.Time { return time.Unix(1531420618, 0) }}
	if err := v.Verify(h, body); err != nil {
		t.Fatalf("Verify(Slack's example) = %v, want nil", err)
	}
}
