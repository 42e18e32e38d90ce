package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/testsite"
)

// TestTrapsEndThroughThePipeline crawls the hostile server's traps with the real binaries, one
// target (and one server) each, and counts the requests each server saw (robots.txt and the
// /sitemap.xml probe aside): the self-nesting directory ends at the repeated-segment rule, the
// session-id trap at its first page (its links canonicalise to itself), the infinite calendar
// at max_depth (one month each way per level), and the 30-hop redirect chain after every hop
// once.
func TestTrapsEndThroughThePipeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path string
		maxDepth   int
		want       int
	}{
		{"nesting directories", testsite.HostileNest, 100, 3},
		{"session ids", testsite.HostileSession, 100, 1},
		{"calendar", testsite.HostileCalendar, 10, 1 + 2*10},
		{"redirect chain", testsite.HostileChain, 100, testsite.HostileChainHops + 1},
	}
	sys := NewSystem(t)
	sys.StartAll(2, 1)
	servers := make([]*testsite.Hostile, len(tests))
	ids := make([]int64, len(tests))
	for i, tc := range tests {
		servers[i] = testsite.NewHostile()
		defer servers[i].Close()
		ids[i] = createTarget(t, sys, map[string]any{"seed_url": servers[i].URL() + tc.path, "max_depth": tc.maxDepth, "per_host_rps": 0})
	}
	for i, tc := range tests {
		st := sys.WaitDone(ids[i], 2*time.Minute)
		n := 0
		for _, uri := range servers[i].Requests() {
			if uri != "/robots.txt" && uri != "/sitemap.xml" {
				n++
			}
		}
		if n != tc.want || st.Fetched != int64(tc.want) {
			t.Errorf("%s: %d requests, %d URLs fetched; want %d", tc.name, n, st.Fetched, tc.want)
		}
		t.Logf("%s (max_depth %d): %d fetches; requests %s", tc.name, tc.maxDepth, n, strings.Join(clipList(servers[i].Requests(), 6), " "))
	}
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], "…")
}
