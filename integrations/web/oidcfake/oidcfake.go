// Package oidcfake is a fake OpenID Connect provider shaped like Sign in
// with Slack, for tests: discovery, JWKS, an authorize endpoint that signs
// the configured person in at once, and a token endpoint issuing RS256 ID
// tokens with Slack's team and user claims.
package oidcfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// User is who the provider signs in.
type User struct {
	ID, Team, Name, Email string
}

// Server is the fake provider.
type Server struct {
	srv          *httptest.Server
	key          *rsa.PrivateKey
	ClientID     string
	ClientSecret string

	mu    sync.Mutex
	user  User
	codes map[string]grant
	// Tamper, when set, changes the ID token's claims before signing.
	tamper func(claims map[string]any)
	// wrongKey signs ID tokens with a key the JWKS does not publish.
	wrongKey bool
}

type grant struct {
	nonce, clientID, redirect string
	user                      User
}

// New starts a provider that signs user in for clientID/clientSecret.
func New(clientID, clientSecret string, user User) *Server {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	s := &Server{key: key, ClientID: clientID, ClientSecret: clientSecret, user: user, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
	mux.HandleFunc("GET /jwks", s.jwks)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the issuer.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the provider.
func (s *Server) Close() { s.srv.Close() }

// SetUser changes who signs in next.
func (s *Server) SetUser(u User) { s.mu.Lock(); s.user = u; s.mu.Unlock() }

// Tamper changes the claims of every ID token issued from now on.
func (s *Server) Tamper(fn func(claims map[string]any)) { s.mu.Lock(); s.tamper = fn; s.mu.Unlock() }

// SignWithWrongKey makes ID tokens carry a signature the JWKS cannot verify.
func (s *Server) SignWithWrongKey() { s.mu.Lock(); s.wrongKey = true; s.mu.Unlock() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.srv.URL,
		"authorization_endpoint":                s.srv.URL + "/authorize",
		"token_endpoint":                        s.srv.URL + "/token",
		"jwks_uri":                              s.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email"},
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// authorize signs the configured user in at once and sends the browser back.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" {
		http.Error(w, "unknown client or response type", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || back.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	code := b64(random(16))
	s.mu.Lock()
	s.codes[code] = grant{nonce: q.Get("nonce"), clientID: q.Get("client_id"), redirect: back.String(), user: s.user}
	s.mu.Unlock()
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || secret != s.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	g, found := s.codes[r.PostForm.Get("code")]
	delete(s.codes, r.PostForm.Get("code")) // codes are single use
	tamper, wrong := s.tamper, s.wrongKey
	s.mu.Unlock()
	if !found || g.redirect != r.PostForm.Get("redirect_uri") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": s.srv.URL, "sub": g.user.ID, "aud": s.ClientID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": g.nonce,
		"name": g.user.Name, "email": g.user.Email,
		"https://slack.com/user_id": g.user.ID, "https://slack.com/team_id": g.user.Team,
	}
	if tamper != nil {
		tamper(claims)
	}
	key := s.key
	if wrong {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": b64(random(16)), "token_type": "Bearer", "expires_in": 3600,
		"id_token": sign(key, claims),
	})
}

// sign makes a compact RS256 JWS.
func sign(key *rsa.PrivateKey, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	c, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}
