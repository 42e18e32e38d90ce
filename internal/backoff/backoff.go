// Package backoff computes jittered exponential retry delays and waits them out.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns an exponential delay with jitter in [d/2, d], where d = base*2^attempt capped
// at max. attempt counts from 0.
func Delay(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// Sleep waits for d or until ctx ends, and reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool { return Wait(ctx, d, nil) }

// Wait waits for d, for a value on wake (nil: no wake-ups) or until ctx ends, and reports
// whether ctx is still live.
func Wait(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
