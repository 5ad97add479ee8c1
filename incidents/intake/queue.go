package intake

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/groupcommit"
	"github.com/reins-oss/reins/ownership"
)

// maxIngestBatch caps how many Ingest calls share one transaction, so one
// transaction's locks and one batch's latency stay bounded in a storm.
const maxIngestBatch = 64

// ingestGroup is group commit for Ingest. Calls go to a lane by the agent
// of their first alert, so concurrent batches touch different incidents and
// alert rows (two batches of one lane deadlocked on alert rows on
// PostgreSQL); a call for several agents may cross lanes, and a deadlock is
// then retried like any conflict. The zero value is ready to use.
type ingestGroup struct {
	lanes groupcommit.Lanes[*ingestCall]
}

// lane returns the lane of the agent the first alert is for.
func (g *ingestGroup) lane(reg *ownership.Registry, alerts []incidents.Alert) *groupcommit.Lane[*ingestCall] {
	if len(alerts) == 0 {
		return g.lanes.Of("")
	}
	_, name := agentOf(reg, &alerts[0])
	return g.lanes.Of(name)
}

// ingestCall is one Ingest call waiting for its alerts to commit.
type ingestCall struct {
	ctx    context.Context
	reg    *ownership.Registry
	alerts []incidents.Alert

	repeats []int64 // per alert, the incident RecordRepeats recorded it in, or 0
	in      *intake // set with err before the batch is answered
	err     error
}

// ingestGrouped records alerts in a transaction it may share with concurrent
// calls, and returns once that transaction committed (or failed for this
// call). Each call keeps its own intake, run one after another inside the
// shared transaction, so its events, outbox rows and result are those it
// would have had alone in a transaction of its own right after the calls
// before it.
func (s *Service) ingestGrouped(ctx context.Context, reg *ownership.Registry, alerts []incidents.Alert) (*intake, error) {
	// A copy of the caller's alerts, which the batch normalises in place.
	c := &ingestCall{ctx: ctx, reg: reg, alerts: slices.Clone(alerts)}
	s.group.lane(c.reg, alerts).Do(c, maxIngestBatch, s.runIngestBatch, func(batch []*ingestCall, p any) {
		for _, m := range batch {
			m.in, m.err = nil, fmt.Errorf("ingest batch panicked: %v", p)
		}
	})
	return c.in, c.err
}

// runIngestBatch records the batch's pure repeats in one statement of its
// own, then commits the calls with anything else in one transaction. When
// that fails, each such call runs again in a transaction of its own, so one
// bad call (or a caller that gave up) fails only itself.
//
// A pure repeat changes nothing but its alert row's receipt (count, times,
// labels), so committing it ahead of the rest of its call is safe: a call
// that then fails is retried by its sender and its repeats counted again,
// which is what a re-sent notification means anyway. A storm, nearly all
// repeats, then costs one autocommit statement per batch: no BEGIN, no
// COMMIT.
func (s *Service) runIngestBatch(batch []*ingestCall) {
	live := make([]*ingestCall, 0, len(batch))
	for _, c := range batch {
		if c.err = c.ctx.Err(); c.err == nil {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	now := s.core.Now()
	repeats, err := s.tryRepeats(live[0].ctx, s.core.Store(), live, now)
	if err != nil {
		// The transactions below try each alert again. Should a batch of
		// over 64 repeats have failed after its first statement, those it
		// recorded count twice, as a re-sent notification would.
		s.core.Log().Debug("recording repeats ahead of their batch failed", "calls", len(live), "err", err)
		repeats = make([][]int64, len(live))
	}
	rest := make([]*ingestCall, 0, len(live))
	for i, c := range live {
		c.repeats = repeats[i]
		if !allRecorded(c.repeats) {
			rest = append(rest, c)
			continue
		}
		c.in = repeatsOnly(c.repeats)
	}
	if len(rest) > 1 {
		// The first call's context bounds the shared transaction; should it be
		// cancelled, the others still commit in the per-call fallback below.
		var queued []summaryKey
		err := s.core.RetryTx(rest[0].ctx, func(q incidents.Queries) (err error) {
			queued, err = s.ingestCalls(rest[0].ctx, q, now, rest)
			return err
		})
		if err == nil {
			s.summaries.add(queued)
			return
		}
	}
	for _, c := range rest {
		var queued []summaryKey
		c.err = s.core.RetryTx(c.ctx, func(q incidents.Queries) (err error) {
			queued, err = s.ingestCalls(c.ctx, q, now, []*ingestCall{c})
			return err
		})
		if c.err == nil {
			s.summaries.add(queued)
		}
	}
}

// ingestCalls runs calls one after another with q, then writes what they
// left pending and the incidents they changed. It returns the summary
// updates queued.
func (s *Service) ingestCalls(ctx context.Context, q incidents.Queries, now time.Time, calls []*ingestCall) ([]summaryKey, error) {
	b := newBatch()
	if err := b.prefetch(ctx, q, calls, now); err != nil {
		return nil, err
	}
	ins := make([]*intake, len(calls))
	for i, c := range calls {
		in, err := s.ingestIn(ctx, q, c.reg, now, c.alerts, c.repeats, b)
		if err != nil {
			return nil, err
		}
		ins[i] = in
	}
	queued, err := s.flushIntakes(ctx, q, b, ins, now)
	if err != nil {
		return nil, err
	}
	for i, c := range calls {
		c.in = ins[i]
	}
	return queued, nil
}

// repeatsOnly is the intake of a call whose alerts were all recorded as
// pure repeats: there is nothing left to do but count them.
func repeatsOnly(repeats []int64) *intake {
	in := &intake{}
	for _, id := range repeats {
		in.track(id)
		in.res.Repeated++
	}
	return in
}

// allRecorded says whether every alert of a call was recorded as a pure
// repeat.
func allRecorded(repeats []int64) bool {
	return len(repeats) > 0 && !slices.Contains(repeats, 0)
}
