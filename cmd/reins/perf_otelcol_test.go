package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// otelcolOTLP starts the OpenTelemetry Collector that REINS_BENCH_OTELCOL
// names (built from the Collector's modules by .ci/otelcol/build: its OTLP
// receiver and the debug exporter) and returns its OTLP/HTTP base URL, or ""
// when the variable is unset: the benchmarks then report only the in-process
// decode ceiling (ceilingOTLP), which needs nothing built.
func otelcolOTLP(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv("REINS_BENCH_OTELCOL")
	if bin == "" {
		return ""
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config, err := filepath.Abs("../../.ci/otelcol/config.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", config)
	cmd.Env = append(os.Environ(), "REINS_OTELCOL_ENDPOINT="+addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start the Collector %s: %v", bin, err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	// The receiver answers an empty JSON export with 200 once it listens.
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err := http.Post(url+"/v1/traces", "application/json", bytes.NewReader([]byte("{}")))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the Collector %s did not answer on %s within 20 s: %v\n%s", bin, addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
