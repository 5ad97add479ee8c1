package intake_test

import (
	"context"

	"github.com/reins-oss/reins/incidents/incidentstest"
)

var ctx = context.Background()

// The shared set-up helpers, by the names these tests use.
var (
	ingest          = incidentstest.Ingest
	eventKinds      = incidentstest.EventKinds
	outboxKeys      = incidentstest.OutboxKeys
	findIncident    = incidentstest.FindIncident
	withFingerprint = incidentstest.WithFingerprint
	resolved        = incidentstest.Resolved
	callsSince      = incidentstest.CallsSince
	resolve         = incidentstest.Resolve
	openIncident    = incidentstest.OpenIncident
	drain           = incidentstest.Drain
)
