package aftermath_test

import (
	"context"
)

var ctx = context.Background()
