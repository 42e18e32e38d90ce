package store_test

import (
	"testing"
	"time"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// BenchmarkDispatch is one scheduler tick: store.Dispatch leasing 256 URLs of one unpaced host
// out of a frontier of 20,000 queued URLs. Between iterations (untimed) the leased URLs go back
// to the queue, so every tick sees the same frontier.
func BenchmarkDispatch(b *testing.B) {
	ctx := b.Context()
	s, _ := testenv.Store(b)
	if _, err := s.CreateTarget(ctx, target.Spec{Name: "bench", SeedURL: benchURL(0), Scope: "host",
		MaxDepth: 1000, MaxPages: 1 << 30, MaxAttempts: 3}); err != nil {
		b.Fatal(err)
	}
	jobs := benchDispatch(b, ctx, s, 1)
	links := make([]string, 20000)
	for i := range links {
		links[i] = benchURL(i + 1)
	}
	seed := store.Result{URLID: jobs[0].URLID, TargetID: jobs[0].TargetID, URL: jobs[0].URL, Status: 200,
		Text: "hub", Links: links, StartedAt: time.Now()}
	if _, err := s.ApplyResults(ctx, []store.Result{seed}, policy); err != nil {
		b.Fatal(err)
	}
	lim := store.DispatchLimits{MaxInFlight: 2000, HostMaxInFlight: 256, Hosts: 100, Lease: time.Minute}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := s.Dispatch(ctx, lim)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 256 {
			b.Fatalf("dispatched %d, want 256", len(got))
		}
		b.StopTimer()
		ids := make([]int64, len(got))
		for k, j := range got {
			ids[k] = j.URLID
		}
		if err := s.Undispatch(ctx, ids); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "urls/s")
}
