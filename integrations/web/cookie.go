package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// signer signs cookie values with HMAC-SHA256. The cookie's name is part of
// what is signed, so a value minted for one cookie (the short-lived sign-in
// state) is never accepted as another (the session).
type signer struct{ key []byte }

var errBadCookie = errors.New("cookie missing, forged or expired")

func (s signer) mac(name, payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// encode returns payload.mac for v, which must carry its own expiry.
func (s signer) encode(name string, v any) (string, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(js)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(name, p)), nil
}

// decode verifies the MAC before it parses anything.
func (s signer) decode(name, value string, v any) error {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return errBadCookie
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(name, p)) {
		return errBadCookie
	}
	js, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return errBadCookie
	}
	if err := json.Unmarshal(js, v); err != nil {
		return errBadCookie
	}
	return nil
}

// session is who is signed in, until when.
type session struct {
	User    string `json:"u"`           // Slack user ID, or the proxy's user
	Name    string `json:"n,omitempty"` // display name
	Team    string `json:"t,omitempty"`
	Expires int64  `json:"e"` // unix seconds
}

// loginState is the sign-in in progress: what the provider must send back.
type loginState struct {
	State   string `json:"s"`
	Nonce   string `json:"o"`
	Next    string `json:"x"`
	Expires int64  `json:"e"`
}

const (
	sessionTTL = 12 * time.Hour
	loginTTL   = 10 * time.Minute
)

// cookieName gets the __Host- prefix on https: the browser then refuses the
// cookie unless it is Secure, host-only and for the whole site.
func (h *Handler) cookieName(base string) string {
	if h.secure {
		return "__Host-" + base
	}
	return base
}

func (h *Handler) setCookie(w http.ResponseWriter, base, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(base), Value: value, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, base string) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(base), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
}

// readCookie decodes and checks the expiry of a signed cookie.
func (h *Handler) readCookie(r *http.Request, base string, v interface{ expires() int64 }) error {
	c, err := r.Cookie(h.cookieName(base))
	if err != nil {
		return errBadCookie
	}
	if err := h.sign.decode(base, c.Value, v); err != nil {
		return err
	}
	if h.now().Unix() >= v.expires() {
		return errBadCookie
	}
	return nil
}

func (s *session) expires() int64    { return s.Expires }
func (s *loginState) expires() int64 { return s.Expires }
