package outbox

import (
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		attempt  int
		err      error
		min, max time.Duration
	}{
		{name: "First", attempt: 1, err: errors.New("x"), min: time.Second, max: 2 * time.Second},
		{name: "Third", attempt: 3, err: errors.New("x"), min: 4 * time.Second, max: 8 * time.Second},
		{name: "Capped", attempt: 40, err: errors.New("x"), min: backoffCap / 2, max: backoffCap},
		{name: "RetryAfterIsTheMinimum", attempt: 1, err: &RetryAfterError{After: time.Minute, Err: errors.New("429")},
			min: time.Minute, max: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				if got := backoff(tt.attempt, tt.err); got < tt.min || got > tt.max {
					t.Fatalf("got %v, want within [%v, %v]", got, tt.min, tt.max)
				}
			}
		})
	}
}
