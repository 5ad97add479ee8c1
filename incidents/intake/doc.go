// Package intake is the use cases that open incidents: alerts in (Ingest,
// the test alert) and incidents declared by hand (Declare). It holds its own
// state (the group commit, the summary and receipt memos, the openings per
// source) beside the *incidents.Core it shares with the other use cases.
//
// Service.Ingest turns normalised alerts into incidents. The files, in the
// order an alert meets them:
//
//   - collectors.go: alerts of agents reins.yaml does not name, and
//     alerts past a source's alerts.max_new_incidents_per_minute, go to one
//     collecting incident per source instead of opening their own.
//   - queue.go: concurrent Ingest calls queue and commit together
//     (the group commit below).
//   - repeats.go: alerts that repeat a stored one unchanged are
//     recorded by one statement before the transaction (the repeat fast path
//     below).
//   - intake.go: each remaining alert joins its agent's open incident or
//     opens one, with its timeline events and outbox rows; Declare opens one
//     by hand.
//   - rows.go: what the calls sharing a transaction read once (the
//     open incidents) and write once (alert rows, events).
//   - save.go: each incident the calls changed is written back once,
//     without overwriting a change made since it was read, and summary
//     updates are debounced per incident.
//
// Group commit. Concurrent Ingest calls share one transaction: a call that
// finds no batch running in its lane starts one at once, so a lone alert
// waits for nobody; calls arriving meanwhile queue and run together next (at
// most 64), each with its own intake, one after another, so results, events
// and outbox rows are those of back-to-back transactions, and every caller
// returns after the commit. If a batch fails, each call re-runs alone, so a
// bad call fails only itself. Calls go to one of 2 lanes by agent: one lane
// with two batches in flight deadlocked on alert rows on PostgreSQL, and more
// lanes measured slower. What it bought is measured in docs/performance.md
// ("Alert storm throughput").
//
// Repeat fast path. Nearly every alert of a storm is a pure repeat: firing,
// in its agent's open, grouping incident, with the same status, title,
// summary, severity, sessions and links as its stored row, so nothing merges
// into the incident and no event or outbox row follows. Before a batch's
// transaction, the first such alert per agent and fingerprint of every call
// is recorded by one RecordRepeats statement that only moves the alert's
// receipt (count, times, labels); a call whose alerts were all recorded
// returns without a transaction, the rest take the full path. Committing a
// repeat ahead of its call is safe: if the rest fails the sender retries and
// the repeat is counted again. It applies only while the incident's last
// alert is within a minute, so the full path still refreshes it and a
// continuous alert keeps its incident past the group window, and only to
// alerts this process received before (a first receipt would find nothing to
// update). Figures: docs/performance.md, "Repeat fast path" and "Bulk repeats".
package intake
