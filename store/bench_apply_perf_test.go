package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

const benchBatch = 100

// benchText is 8 KB of text, as on the synthetic bench site.
var benchText = strings.Repeat("alpha bravo charlie delta echo foxtrot golf hotel india juliet ", 8192/64)

func benchURL(n int) string { return fmt.Sprintf("http://bench.test/p/%d", n) }

// benchResult is a crawled page: 8 KB of text, one new link (next) and nine known ones.
func benchResult(j store.Job, next int, rng *rand.Rand) store.Result {
	links := []string{benchURL(next)}
	for range 9 {
		links = append(links, benchURL(rng.IntN(max(next-benchBatch, 1))))
	}
	text := benchText + j.URL // distinct content per page
	sum := sha256.Sum256([]byte(text))
	return store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, FinalURL: j.URL, Status: 200,
		ContentType: "text/html; charset=utf-8", Title: "Page " + j.URL, Text: text, Links: links,
		ContentHash: hex.EncodeToString(sum[:]), Size: len(text), StartedAt: time.Now(), DurationMS: 1}
}

func benchDispatch(b *testing.B, ctx context.Context, s *store.Store, n int) []store.Job {
	b.Helper()
	jobs, err := s.Dispatch(ctx, store.DispatchLimits{MaxInFlight: n, HostMaxInFlight: n, Hosts: 10, Lease: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return jobs
}

// BenchmarkApplyResultsKnownLinks is the processor's batch persist on a mature crawl: one ApplyResults call with 100 pages of
// 8 KB text and 10 links each (1 new, 9 known), as the processor's default batch. The frontier
// grows by 100 URLs per iteration; ns/op is per batch, so pages/s = 100 / (ns/op / 1e9).
func BenchmarkApplyResultsKnownLinks(b *testing.B) {
	ctx := b.Context()
	s, _ := testenv.Store(b)
	seed := benchURL(0)
	tg, err := s.CreateTarget(ctx, target.Spec{Name: "bench", SeedURL: seed, Scope: "host",
		MaxDepth: 1000, MaxPages: 1 << 30, MaxAttempts: 3})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// The seed links to the first batch.
	jobs := benchDispatch(b, ctx, s, 1)
	first := make([]string, benchBatch)
	for i := range first {
		first[i] = benchURL(i + 1)
	}
	seedRes := benchResult(jobs[0], 1, rng)
	seedRes.Links = first
	if _, err := s.ApplyResults(ctx, []store.Result{seedRes}, policy); err != nil {
		b.Fatal(err)
	}
	next := benchBatch + 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		jobs := benchDispatch(b, ctx, s, benchBatch)
		if len(jobs) != benchBatch {
			b.Fatalf("dispatched %d, want %d", len(jobs), benchBatch)
		}
		rs := make([]store.Result, len(jobs))
		for k, j := range jobs {
			rs[k] = benchResult(j, next, rng)
			next++
		}
		b.StartTimer()
		a, err := s.ApplyResults(ctx, rs, policy)
		if err != nil {
			b.Fatal(err)
		}
		if a.Applied != benchBatch || a.Discovered != benchBatch {
			b.Fatalf("applied %d, discovered %d; want %d each", a.Applied, a.Discovered, benchBatch)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "pages/s")
	_ = tg
}
