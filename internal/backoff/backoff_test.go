package backoff

import (
	"context"
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

func TestSleepAndWait(t *testing.T) {
	t.Parallel()
	start := time.Now()
	if !Sleep(context.Background(), 20*time.Millisecond) || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("Sleep returned early or reported a dead context")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Fatal("Sleep on an ended context did not return false at once")
	}
	wake := make(chan struct{}, 1)
	wake <- struct{}{}
	start = time.Now()
	if !Wait(context.Background(), time.Hour, wake) || time.Since(start) > time.Second {
		t.Fatal("Wait did not return true on a wake-up")
	}
}
