package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/store"
)

// BenchmarkApplyResults measures one processor batch: 100 results with 8 KB of text and 10
// in-scope links each (so 1,000 new URLs per batch), the shape of the standard synthetic site.
// It reports pages/s so the cost of the fetch history, rates, links and host counters written
// in the same transaction can be compared with a build without them.
func BenchmarkApplyResults(b *testing.B) {
	s, _ := testenv.Store(b)
	ctx := b.Context()
	tg, err := s.CreateTarget(ctx, store.NewTarget{Name: "bench", SeedURL: "http://bench.test/", SeedHost: "bench.test",
		Scope: "host", MaxDepth: 100, MaxPages: 100_000_000, MaxAttempts: 3})
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("lorem ipsum dolor sit amet consectetur ", 220)[:8192]
	const batch = 100
	lim := store.DispatchLimits{MaxInFlight: batch, HostMaxInFlight: batch, Hosts: 10, Lease: time.Hour}
	next := 0
	results := func(jobs []store.Job) []store.Result {
		rs := make([]store.Result, len(jobs))
		for i, j := range jobs {
			links := make([]string, 10)
			for k := range links {
				next++
				links[k] = fmt.Sprintf("http://bench.test/p/%d", next)
			}
			rs[i] = store.Result{URLID: j.URLID, TargetID: tg.ID, URL: j.URL, Status: 200, ContentType: "text/html",
				Title: "Bench " + j.URL, Text: text, Links: links, ContentHash: fmt.Sprintf("%x", j.URLID),
				Size: len(text), DurationMS: 12, StartedAt: time.Now()}
		}
		return rs
	}
	// Warm up until a full batch is due.
	for {
		jobs, err := s.Dispatch(ctx, lim)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.ApplyResults(ctx, results(jobs), policy); err != nil {
			b.Fatal(err)
		}
		if len(jobs) == batch {
			break
		}
	}
	var applied time.Duration
	for b.Loop() {
		b.StopTimer()
		jobs, err := s.Dispatch(ctx, lim)
		if err != nil || len(jobs) != batch {
			b.Fatalf("dispatch = %d jobs, %v", len(jobs), err)
		}
		rs := results(jobs)
		b.StartTimer()
		start := time.Now()
		if _, err := s.ApplyResults(ctx, rs, policy); err != nil {
			b.Fatal(err)
		}
		applied += time.Since(start)
	}
	b.ReportMetric(float64(b.N*batch)/applied.Seconds(), "pages/s")
}
