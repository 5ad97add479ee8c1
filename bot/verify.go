package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Slack request-signing headers (signing secret, version v0).
const (
	headerSignature = "X-Slack-Signature"
	headerTimestamp = "X-Slack-Request-Timestamp"
	headerRetryNum  = "X-Slack-Retry-Num"
)

// MaxSkew is how far a request's timestamp may be from now, either way, before
// it is refused as a possible replay.
const MaxSkew = 5 * time.Minute

// Verification errors. They say what was wrong without echoing anything secret.
var (
	ErrNoSignature  = errors.New("missing Slack signature headers")
	ErrBadTimestamp = errors.New("malformed Slack request timestamp")
	ErrStale        = errors.New("Slack request timestamp outside the 5-minute window")
	ErrBadSignature = errors.New("Slack signature does not match")
)

// Verifier checks Slack's v0 request signature: HMAC-SHA256 of
// "v0:<timestamp>:<raw body>" under the signing secret. slack-go's
// SecretsVerifier reads the wall clock itself; ours takes Now so tests can pin
// time.
type Verifier struct {
	Secret string
	Now    func() time.Time // nil: time.Now
}

// Verify returns nil when h carries a valid, fresh signature for body.
func (v Verifier) Verify(h http.Header, body []byte) error {
	sig, tsText := h.Get(headerSignature), h.Get(headerTimestamp)
	if sig == "" || tsText == "" {
		return ErrNoSignature
	}
	if v.Secret == "" {
		// An empty secret would let anyone who knows it is empty sign requests.
		return ErrBadSignature
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if skew := now().Sub(time.Unix(ts, 0)); skew > MaxSkew || skew < -MaxSkew {
		return ErrStale
	}
	got, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return ErrBadSignature
	}
	gotMAC, err := hex.DecodeString(got)
	if err != nil {
		return ErrBadSignature
	}
	if !hmac.Equal(gotMAC, signature(v.Secret, tsText, body)) {
		return ErrBadSignature
	}
	return nil
}

func signature(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns the headers Slack would send with body at ts. It exists for
// tests in other packages that drive the real handlers end to end.
func Sign(secret string, ts time.Time, body []byte) http.Header {
	tsText := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set(headerTimestamp, tsText)
	h.Set(headerSignature, "v0="+hex.EncodeToString(signature(secret, tsText, body)))
	return h
}
