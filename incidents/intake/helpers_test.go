package intake_test

import (
	"context"
)

var ctx = context.Background()
