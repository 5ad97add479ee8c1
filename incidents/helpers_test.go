package incidents_test

import (
	"context"

	"github.com/reins-oss/reins/incidents"
)

var ctx = context.Background()

var bob = incidents.Actor{Kind: incidents.ActorSlack, ID: "U02BOB"}
var alice = incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE", Name: "alice"}
