package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

func TestMain(m *testing.M) {
	if os.Getenv("SOAK_DURATION") == "" {
		os.Exit(m.Run()) // TestSoak skips itself
	}
	cleanup, err := harness.Build(false) // RSS is measured: no race detector
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return d
}

func envInt(t *testing.T, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return n
}

// rssKB reads VmRSS from /proc/pid/status.
func rssKB(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func goroutines(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Goroutines int `json:"goroutines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	return body.Goroutines, nil
}

type sample struct {
	at         time.Duration
	rss, gor   []int // per worker
	jobs, res  int
	dead       int
	stored     int64
	targetsRun int
}

// TestSoak crawls a synthetic site over and over (a new target each time the last one is done;
// finished targets are deleted so the database stays bounded) for SOAK_DURATION.
func TestSoak(t *testing.T) {
	dur := envDuration(t, "SOAK_DURATION", 0)
	if dur == 0 {
		t.Skip("set SOAK_DURATION (make soak) to run the soak benchmark")
	}
	interval := envDuration(t, "SOAK_INTERVAL", 10*time.Second)
	warmup := envDuration(t, "SOAK_WARMUP", max(2*time.Minute, dur/5))
	pages := envInt(t, "SOAK_PAGES", 20000)
	conc := envInt(t, "SOAK_CONCURRENCY", 8)

	site := testsite.New(testsite.Options{Pages: pages, TextBytes: 4096, Delay: 10 * time.Millisecond})
	defer site.Close()
	sys := harness.NewSystem(t, "TRAWL_LOG_LEVEL=warn")
	sys.StartAll(0, 0)
	workers := []*harness.Proc{
		sys.Start("crawler", nil, fmt.Sprintf("TRAWL_CRAWLER_CONCURRENCY=%d", conc)),
		sys.Start("crawler", nil, fmt.Sprintf("TRAWL_CRAWLER_CONCURRENCY=%d", conc)),
		sys.Start("processor", nil),
	}
	db, err := pgxpool.New(t.Context(), sys.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := amqp.Dial(testenv.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var current int64
	var finished int64 // pages of deleted targets
	targets := 0
	newTarget := func() {
		var created struct{ ID int64 }
		body := map[string]any{"seed_url": site.SeedURL(), "max_depth": 1000, "max_pages": 1000000, "per_host_rps": 0}
		if code := sys.API(http.MethodPost, "/api/targets", body, &created); code != http.StatusCreated {
			t.Fatalf("POST /api/targets = %d", code)
		}
		current = created.ID
		targets++
	}
	newTarget()

	header := fmt.Sprintf("%8s", "t")
	for _, w := range workers {
		header += fmt.Sprintf(" | %-18s %8s %5s", w.Name, "rss_MB", "gor")
	}
	header += fmt.Sprintf(" | %6s %6s %4s | %9s %7s %7s", "jobs", "pages", "dlq", "stored", "pages/s", "targets")
	t.Log(header)

	var samples []sample
	start := time.Now()
	var lastStored int64
	ticker := time.NewTicker(time.Second) // rotate targets promptly; sample every interval
	defer ticker.Stop()
	lastSample := start
	for time.Since(start) < dur {
		<-ticker.C
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var state string
		var n int64
		if err := db.QueryRow(ctx, `SELECT state, urls_done FROM targets WHERE id = $1`, current).Scan(&state, &n); err != nil {
			cancel()
			t.Fatalf("target: %v", err)
		}
		if state == "done" {
			if _, err := db.Exec(ctx, `DELETE FROM targets WHERE id = $1`, current); err != nil {
				cancel()
				t.Fatalf("delete target: %v", err)
			}
			finished += n
			n = 0
			newTarget()
		}
		cancel()
		if time.Since(lastSample) < interval {
			continue
		}
		rate := float64(finished+n-lastStored) / time.Since(lastSample).Seconds()
		lastSample = time.Now()
		s := sample{at: time.Since(start), stored: finished + n, targetsRun: targets}
		row := fmt.Sprintf("%7.0fs", s.at.Seconds())
		for _, w := range workers {
			if w.Exited() {
				t.Fatalf("%s exited during the soak:\n%s", w.Name, w.Output())
			}
			rss, err := rssKB(w.PID())
			if err != nil {
				t.Fatal(err)
			}
			g, err := goroutines(w.HealthAddr)
			if err != nil {
				t.Fatal(err)
			}
			s.rss, s.gor = append(s.rss, rss), append(s.gor, g)
			row += fmt.Sprintf(" | %-18s %8.1f %5d", "", float64(rss)/1024, g)
		}
		s.jobs = testenv.QueueDepth(t, conn, sys.Topo.CrawlQueue())
		s.res = testenv.QueueDepth(t, conn, sys.Topo.PagesQueue())
		s.dead = testenv.QueueDepth(t, conn, sys.Topo.DeadLetterQueue())
		lastStored = s.stored
		row += fmt.Sprintf(" | %6d %6d %4d | %9d %7.0f %7d", s.jobs, s.res, s.dead, s.stored, rate, s.targetsRun)
		t.Log(row)
		samples = append(samples, s)
	}

	// Drift: median of the first third of post-warm-up samples against the last third.
	var post []sample
	for _, s := range samples {
		if s.at >= warmup {
			post = append(post, s)
		}
	}
	if len(post) < 6 {
		t.Logf("only %d samples after the %s warm-up: too few to judge drift", len(post), warmup)
		return
	}
	third := len(post) / 3
	for i, w := range workers {
		for _, m := range []struct {
			name string
			get  func(sample) int
		}{
			{"rss", func(s sample) int { return s.rss[i] }},
			{"goroutines", func(s sample) int { return s.gor[i] }},
		} {
			first, last := median(post[:third], m.get), median(post[len(post)-third:], m.get)
			drift := 100 * (last - first) / first
			verdict := "flat"
			if drift > 10 || drift < -10 {
				verdict = "DRIFT"
				t.Errorf("%s %s drifted %+.1f%% after warm-up (%.0f -> %.0f)", w.Name, m.name, drift, first, last)
			}
			t.Logf("SOAK worker=%s metric=%s first=%.0f last=%.0f drift_pct=%+.1f %s", w.Name, m.name, first, last, drift, verdict)
		}
	}
	total := samples[len(samples)-1]
	t.Logf("SOAK duration=%s pages_stored=%d targets=%d pages_per_s=%.0f dead_letters=%d",
		dur, total.stored, total.targetsRun, float64(total.stored)/total.at.Seconds(), total.dead)
	if total.dead != 0 {
		t.Errorf("%d messages dead-lettered during the soak", total.dead)
	}
}

func median(s []sample, get func(sample) int) float64 {
	v := make([]int, len(s))
	for i := range s {
		v[i] = get(s[i])
	}
	slices.Sort(v)
	return float64(v[len(v)/2])
}
