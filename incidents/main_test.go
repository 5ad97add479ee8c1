package incidents_test

import (
	"os"
	"testing"

	"github.com/reins-oss/reins/migrations/dbtest"
)

// TestMain says in one line when PostgreSQL tests were skipped (dbtest.Main).
func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
