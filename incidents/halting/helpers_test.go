package halting_test

import "context"

var ctx = context.Background()
