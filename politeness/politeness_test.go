package politeness

import (
	"errors"
	"math"
	"testing"
)

func TestCheckRPS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rps  float64
		ok   bool
		ms   int
		name string
	}{
		{0, true, 0, "unlimited"},
		{1, true, 1000, "one a second"},
		{3, true, 334, "three a second rounds the interval up"},
		{10, true, 100, "ten a second"},
		{1000, true, 1, "the most"},
		{MinRPS, true, MaxIntervalMS, "one a day"},
		{1.0 / 86400, true, MaxIntervalMS, "one a day, written out"},
		{0.0000001, false, MaxIntervalMS, "the issue's stall: 115 days"},
		{3.3e-7, false, MaxIntervalMS, "the issue's check-constraint 500"},
		{1e-300, false, MaxIntervalMS, "tiny"},
		{math.SmallestNonzeroFloat64, false, MaxIntervalMS, "denormal"},
		{-1, false, 0, "negative"},
		{math.Copysign(0, -1), true, 0, "negative zero is zero"},
		{1000.5, false, 1, "above the most"},
		{math.NaN(), false, 0, "NaN"},
		{math.Inf(1), false, 0, "+Inf"},
		{math.Inf(-1), false, 0, "-Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckRPS(tt.rps)
			if (err == nil) != tt.ok {
				t.Errorf("CheckRPS(%g) = %v, want ok=%v", tt.rps, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrRate) {
				t.Errorf("CheckRPS(%g) = %v, want ErrRate", tt.rps, err)
			}
			if got := IntervalMS(tt.rps); got != tt.ms {
				t.Errorf("IntervalMS(%g) = %d, want %d", tt.rps, got, tt.ms)
			}
			if got := IntervalMS(tt.rps); got < 0 || got > MaxIntervalMS || got > math.MaxInt32 {
				t.Errorf("IntervalMS(%g) = %d, outside [0, %d]", tt.rps, got, MaxIntervalMS)
			}
		})
	}
}
