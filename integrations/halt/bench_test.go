package halt_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The kill flag is polled by every agent worker, so its handler is measured
// against the cheapest possible handler on the same path: one answering a
// constant. Three levels, each run with b.RunParallel:
//   - Recorder: routed by http.ServeMux into a fresh httptest.ResponseRecorder
//     per request (the per-request state net/http always has);
//   - Raw: the handler alone, into a reused no-op ResponseWriter;
//   - HTTP: a real loopback server and keep-alive client.
//
// Besides wall time each reports cpu-ns/op, the process CPU time per
// request (getrusage), which stays comparable on a loaded machine.
//
// go test -run '^$' -bench 'Handler' -benchmem ./integrations/halt/

var constBody = []byte(`{"agent":"billing-bot","session":"s-8812","halted":false,"reason":"","since":null,"scope":""}` + "\n")

func constHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(constBody)
	})
}

const benchTarget = "/api/v1/agents/billing-bot/halted?session=s-8812"

// parallel runs body under b.RunParallel and reports cpu-ns/op.
func parallel(b *testing.B, body func(*testing.PB)) {
	b.ReportAllocs()
	start := cpuTime(b)
	b.RunParallel(body)
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

func benchRecorder(b *testing.B, h http.Handler) {
	mux := http.NewServeMux()
	mux.Handle(haltedPattern, h)
	parallel(b, func(pb *testing.PB) {
		r := httptest.NewRequest("GET", benchTarget, nil)
		r.Header.Set("Authorization", "Bearer poll-token")
		for pb.Next() {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

func benchRaw(b *testing.B, h http.Handler) {
	parallel(b, func(pb *testing.PB) {
		r := httptest.NewRequest("GET", benchTarget, nil)
		r.SetPathValue("agent", "billing-bot")
		r.Header.Set("Authorization", "Bearer poll-token")
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

func benchHTTP(b *testing.B, h http.Handler) {
	mux := http.NewServeMux()
	mux.Handle(haltedPattern, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	parallel(b, func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", srv.URL+benchTarget, nil)
		req.Header.Set("Authorization", "Bearer poll-token")
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkFlagHandler(b *testing.B) {
	h := haltedFlags(b).Handler("poll-token", nil)
	b.Run("Recorder", func(b *testing.B) { benchRecorder(b, h) })
	b.Run("Raw", func(b *testing.B) { benchRaw(b, h) })
	b.Run("HTTP", func(b *testing.B) { benchHTTP(b, h) })
}

func BenchmarkConstHandler(b *testing.B) {
	h := constHandler()
	b.Run("Recorder", func(b *testing.B) { benchRecorder(b, h) })
	b.Run("Raw", func(b *testing.B) { benchRaw(b, h) })
	b.Run("HTTP", func(b *testing.B) { benchHTTP(b, h) })
}
