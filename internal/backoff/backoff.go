// Package backoff computes jittered exponential retry delays.
package backoff

import (
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
