package backoff

import (
	"testing"
	"time"
)

func TestDelayBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{20, 5 * time.Second, 10 * time.Second}, // capped
		{1000, 5 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := Delay(tt.attempt, 100*time.Millisecond, 10*time.Second)
			if d < tt.min || d > tt.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
		}
	}
}
