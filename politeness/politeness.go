// Package politeness holds the rules for how fast Trawl may fetch from one host: which per-host
// request rates a target may ask for, and the spacing between request starts that a rate gives.
// The web forms, the JSON API and the store share them, so a rate the dashboard accepts is one
// the database can hold.
package politeness

import (
	"errors"
	"math"
	"time"
)

// MaxInterval is the longest spacing between two request starts a target may ask for. A rate
// below one request a day is refused: a host's spacing is shared by every target on it, and
// an interval of days would stall all of them.
const MaxInterval = 24 * time.Hour

// MaxIntervalMS is MaxInterval in milliseconds, the largest hosts.min_interval_ms (an int32
// column) ever holds.
const MaxIntervalMS = int(MaxInterval / time.Millisecond)

// MinRPS is the smallest non-zero per-host rate: one request per MaxInterval.
const MinRPS = float64(time.Second) / float64(MaxInterval)

// MaxRPS is the largest per-host rate a target may ask for.
const MaxRPS = 1000

// ErrRate is returned by CheckRPS for a rate outside the allowed range.
var ErrRate = errors.New("must be 0 (unlimited) or between 1/86400 (one request a day) and 1000 requests per second")

// CheckRPS reports whether rps is an allowed per-host rate: 0 (unlimited), or a finite rate
// whose interval is at most MaxInterval, up to MaxRPS.
func CheckRPS(rps float64) error {
	switch {
	case rps == 0:
		return nil
	case math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 || rps > MaxRPS:
		return ErrRate
	case math.Ceil(1000/rps) > float64(MaxIntervalMS):
		return ErrRate
	}
	return nil
}

// IntervalMS converts requests per second into the minimum spacing between request starts in
// whole milliseconds, rounded up so the rate is never exceeded; 0 means unlimited. Rates
// CheckRPS refuses never overflow: NaN and negative rates give 0, rates below MinRPS give
// MaxIntervalMS. store/targets.go computes the same in SQL (hostIntervalSQL).
func IntervalMS(rps float64) int {
	if !(rps > 0) { // also NaN
		return 0
	}
	ms := math.Ceil(1000 / rps)
	if ms > float64(MaxIntervalMS) {
		return MaxIntervalMS
	}
	return int(ms)
}
