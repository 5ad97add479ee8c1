package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// SignatureTolerance is how far a signed timestamp may be from now: a replayed
// request older than this is refused.
const SignatureTolerance = 5 * time.Minute

// Grafana signature headers. Grafana lets the timestamp header be named
// freely; reins reads the name Grafana's documentation uses, and the shorter
// one some setups use.
const (
	GrafanaSignatureHeader  = "X-Grafana-Alerting-Signature"
	GrafanaTimestampHeader  = "X-Grafana-Alerting-Signature-Timestamp"
	grafanaTimestampAlt     = "X-Grafana-Alerting-Timestamp"
	LangfuseSignatureHeader = "X-Langfuse-Signature"
)

// verifier checks a source's own signature when a secret is configured.
type verifier func(body []byte, h http.Header, secret string, now time.Time) error

// verifiers holds the sources that sign their webhooks.
var verifiers = map[string]verifier{
	SourceGrafana:  VerifyGrafana,
	SourceLangfuse: VerifyLangfuse,
}

func badSignature(format string, args ...any) error {
	return incidents.Errorf(incidents.EUNAUTHORIZED, format, args...)
}

// VerifyGrafana checks X-Grafana-Alerting-Signature: hex HMAC-SHA256 of the
// body, or of "timestamp:body" when Grafana sends a timestamp header, which
// must then be within SignatureTolerance of now.
func VerifyGrafana(body []byte, h http.Header, secret string, now time.Time) error {
	sig := strings.TrimSpace(h.Get(GrafanaSignatureHeader))
	if sig == "" {
		return badSignature("missing %s header: set the HMAC secret on the Grafana contact point, or unset it on reins", GrafanaSignatureHeader)
	}
	ts := firstOf(h.Get(GrafanaTimestampHeader), h.Get(grafanaTimestampAlt))
	signed := body
	if ts != "" {
		if err := checkTimestamp(ts, now); err != nil {
			return err
		}
		signed = append([]byte(ts+":"), body...)
	}
	if !hmacMatches(secret, signed, sig) {
		return badSignature("%s does not match the body: check the contact point's HMAC secret", GrafanaSignatureHeader)
	}
	return nil
}

// VerifyLangfuse checks x-langfuse-signature: "t=<unix>,v1=<hex HMAC-SHA256
// of "t.body">", with t within SignatureTolerance of now. Any v1 (or s)
// value matching is enough, so a rotated secret can be sent alongside.
func VerifyLangfuse(body []byte, h http.Header, secret string, now time.Time) error {
	header := h.Get(LangfuseSignatureHeader)
	if header == "" {
		return badSignature("missing %s header: set the webhook secret on reins to the one Langfuse shows for this automation", LangfuseSignatureHeader)
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1", "s":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return badSignature("%s: want t=<unix>,v1=<hex>", LangfuseSignatureHeader)
	}
	if err := checkTimestamp(ts, now); err != nil {
		return err
	}
	signed := append([]byte(ts+"."), body...)
	for _, sig := range sigs {
		if hmacMatches(secret, signed, sig) {
			return nil
		}
	}
	return badSignature("%s does not match the body: check the automation's webhook secret", LangfuseSignatureHeader)
}

func checkTimestamp(ts string, now time.Time) error {
	sec, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return badSignature("signature timestamp %q is not a Unix time", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return badSignature("signature timestamp is %s away from reins' clock (more than %s): a replay, or a clock to fix", d.Round(time.Second), SignatureTolerance)
	}
	return nil
}

// hmacMatches compares in constant time; a signature that is not hex fails.
func hmacMatches(secret string, signed []byte, sigHex string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(sigHex))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(signed)
	return hmac.Equal(got, mac.Sum(nil))
}
