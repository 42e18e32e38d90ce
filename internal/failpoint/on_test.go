//go:build failpoint

package failpoint

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAndFire(t *testing.T) {
	pts := parse(" a=3, b ,c=x,,d=0")
	got := map[string]int64{}
	for n, p := range pts {
		got[n] = p.fireAt
	}
	if diff := cmp.Diff(map[string]int64{"a": 3, "b": 1, "c": 1, "d": 1}, got); diff != "" {
		t.Fatalf("parse (-want +got):\n%s", diff)
	}

	t.Setenv(Env, "x=2")
	var fired []int64
	exit = func(name string, hit int64) { fired = append(fired, hit) }
	for range 4 {
		Inject("x")
		Inject("y")
	}
	if diff := cmp.Diff([]int64{2}, fired); diff != "" {
		t.Fatalf("fired (-want +got):\n%s", diff)
	}
}
