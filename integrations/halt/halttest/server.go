// Package halttest holds fakes of the systems reins halts agents through: an
// agent's webhook control endpoint, LaunchDarkly, Unleash and the Kubernetes
// API server, each an httptest server that checks the method, path, headers
// and body of what it receives, keeps state like the real thing, records
// every call, and can be told to fail. FlagStore is an in-memory kill-flag
// store. End-to-end tests point agents' halt.url at these servers.
//
// The fakes re-implement the wire formats on their own (they do not import
// package halt), so a test against them checks reins' requests, not reins
// against itself.
package halttest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Fault is how a fake misbehaves.
type Fault int

// Faults.
const (
	// FaultNone answers like the real service.
	FaultNone Fault = iota
	// FaultError answers every request with 500.
	FaultError
	// FaultHang never answers: the request waits until the client gives up
	// or the test ends.
	FaultHang
	// FaultWrongState accepts changes with 2xx but does not apply them, so a
	// read-back shows the old state.
	FaultWrongState
)

// Call is one request a fake received.
type Call struct {
	Method   string
	Path     string // decoded path
	RawQuery string
	Header   http.Header
	Body     []byte
}

// server is what every fake shares: recording, faults, strict checks.
type server struct {
	t       testing.TB
	srv     *httptest.Server
	release chan struct{}

	mu    sync.Mutex
	calls []Call
	fault Fault
}

// start serves handle on a new httptest server (TLS when tls is set) closed
// when the test ends.
func (s *server) start(t testing.TB, tls bool, handle func(w http.ResponseWriter, r *http.Request, body []byte)) {
	t.Helper()
	s.t = t
	s.release = make(chan struct{})
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body})
		fault := s.fault
		s.mu.Unlock()
		switch fault {
		case FaultError:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "fake outage"})
			return
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			return
		}
		handle(w, r, body)
	}))
	if tls {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	// Cleanups run last-in first-out: hung handlers are released before
	// Close waits for them.
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.release) })
}

// URL is the fake's base URL.
func (s *server) URL() string { return s.srv.URL }

// Client returns a client that trusts the fake (needed for TLS fakes).
func (s *server) Client() *http.Client { return s.srv.Client() }

// SetFault makes the fake misbehave from the next request on.
func (s *server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *server) faulty() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Calls returns the requests received so far, in order.
func (s *server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Reset forgets the recorded calls.
func (s *server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// reject records a protocol violation by reins as a test failure and
// answers 400, so the caller sees an error as well.
func (s *server) reject(w http.ResponseWriter, r *http.Request, format string, args ...any) {
	s.t.Helper()
	s.t.Errorf("halttest: %s %s: "+format, append([]any{r.Method, r.URL.Path}, args...)...)
	writeJSON(w, http.StatusBadRequest, map[string]string{"message": "bad request from reins"})
}

// expectHeader rejects the request unless header name is exactly want.
func (s *server) expectHeader(w http.ResponseWriter, r *http.Request, name, want string) bool {
	s.t.Helper()
	if got := r.Header.Get(name); got != want {
		s.reject(w, r, "header %s = %q, want %q", name, got, want)
		return false
	}
	return true
}

// decodeStrict decodes body into v, rejecting unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
