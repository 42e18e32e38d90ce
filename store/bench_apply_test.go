package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/testenv"
)

// BenchmarkApplyResults measures one processor batch: 100 results with 8 KB of text and 10
// in-scope links each (so 1,000 new URLs per batch), the shape of the standard synthetic site.
// It reports pages/s so the cost of the fetch history, rates, links and host counters written
// in the same transaction can be compared with a build without them; on a busy machine compare
// server-cpu-ms/batch, the CPU time the database's backends spent (read from /proc when the
// server runs on this machine), which other load disturbs much less than wall time.
func BenchmarkApplyResults(b *testing.B) {
	s, dsn := testenv.Store(b)
	cpu := backendCPU(b, dsn)
	ctx := b.Context()
	tg, err := s.CreateTarget(ctx, target.Spec{Name: "bench", SeedURL: "http://bench.test/",
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
	cpuStart := cpu()
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
	if used := cpu() - cpuStart; used > 0 {
		b.ReportMetric(float64(used.Milliseconds())/float64(b.N), "server-cpu-ms/batch")
	}
}

// backendCPU returns a function that sums the CPU time of the server processes serving the
// database at dsn, or always 0 when their /proc entries cannot be read. The dispatch between
// batches is included; it is the same in every build.
func backendCPU(b *testing.B, dsn string) func() time.Duration {
	c, err := pgx.Connect(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(context.Background()) })
	return func() time.Duration {
		rows, err := c.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
		if err != nil {
			return 0
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return 0
		}
		var ticks int64
		for _, pid := range pids {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				return 0
			}
			// Fields after the command name, which ends with ')': utime and stime are the 12th
			// and 13th of them.
			f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
			if len(f) < 13 {
				return 0
			}
			u, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + st
		}
		return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	}
}
