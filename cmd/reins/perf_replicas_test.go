package main

// Intake across replicas (issue 28, "Capacity"): child `reins serve`
// processes on one PostgreSQL database, the exporters' requests spread over
// them round-robin as a load balancer would. docs/performance.md has the
// commands and the figures.

import (
	"context"
	"fmt"
	"testing"

	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// BenchmarkOTLPIntakeReplicas: BenchmarkOTLPIntake's load (16 exporters,
// 96 requests of 1,000 spans) against 1, 2 and 3 replicas sharing one
// PostgreSQL, with the floor on PostgreSQL in the same run. It measures
// what more replicas add on this machine; it asserts nothing beyond every
// request being stored.
func BenchmarkOTLPIntakeReplicas(b *testing.B) {
	const exporters, requests, spans = 16, 96, 1000
	bodies := make([][]byte, requests)
	for i := range bodies {
		bodies[i] = otlpBody(fmt.Sprintf("s-replicas-%03d", i%exporters*7+i/exporters), i, spans)
	}
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			db := dbtest.PostgresURL(b)
			urls := make([]string, n)
			for r := range urls {
				env := processEnv(b, db)
				env["REINS_OTLP_TOKEN"] = otlpToken
				startChild(b, env)
				urls[r] = "http://" + env["REINS_LISTEN"]
			}
			for _, u := range urls {
				waitHTTP(b, u+"/readyz")
			}
			floor := floorOTLP(b, migrations.Postgres)
			for range b.N {
				fl, err := drive(requests, exporters, func(i int) error { return postOTLP(floor, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				got, err := drive(requests, exporters, func(i int) error { return postOTLP(urls[i%n], bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				rate, floorRate := got.rate()*spans, fl.rate()*spans
				b.ReportMetric(rate, "spans/s")
				b.ReportMetric(got.p99(), "p99_ms")
				b.ReportMetric(floorRate, "floor_spans/s")
				b.ReportMetric(rate/floorRate, "rate_ratio")
			}
			// What a stored step costs on disk (the chunks' table with its
			// TOAST and indexes), for the capacity arithmetic.
			conn, _, err := migrations.Connect(context.Background(), db)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			var perStep float64
			if err := conn.Get(&perStep, `SELECT pg_total_relation_size('step_chunks')::float8 / GREATEST(SUM(steps), 1)::float8
				FROM step_chunks`); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(perStep, "disk_bytes/step")
		})
	}
}
