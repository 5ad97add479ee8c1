package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Issue 27, OFREP single evaluation (what the OpenFeature providers send:
// a POST with the evaluation context) against a handler that reads the body
// and answers a constant on the same route, at 32 concurrent. Target:
// throughput ≥ 0.7× the floor's.
func BenchmarkOFREPEvaluate(b *testing.B) {
	const n, conc = 20000, 32
	constant := []byte(`{"key":"flag-bot","value":"running","variant":"running","reason":"STATIC","metadata":{"mode":"running","allow":"","rate":0,"halted":false,"scope":"","reason":""},"cacheable":false}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ofrep/v1/evaluate/flags/{key}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(constant)
	})
	floorSrv := httptest.NewServer(mux)
	b.Cleanup(floorSrv.Close)
	e := startPerfMain(b, testOptions{})
	c := newClient(conc)
	h := http.Header{"Authorization": {"Bearer " + flagToken}, "Content-Type": {"application/json"}}
	body := []byte(`{"context":{"targetingKey":"s-1","tier":"gold"}}`)
	load := func(base string) func(int) error {
		return func(int) error {
			_, err := send(c, http.MethodPost, base+"/ofrep/v1/evaluate/flags/flag-bot", h, body)
			return err
		}
	}
	must(b)(drive(1000, conc, load(floorSrv.URL)))
	floor := must(b)(drive(n, conc, load(floorSrv.URL)))
	must(b)(drive(1000, conc, load(e.URL)))
	got := must(b)(drive(n, conc, load(e.URL)))
	report(b, got, floor)
}
