// Package bench measures Trawl against bare colly on the synthetic site (testsite.Bench). Run it
// with `make bench`; it is skipped unless TRAWL_BENCH=1, so `make test` never pays for it.
package bench

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gocolly/colly/v2"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

var siteBin string

func TestMain(m *testing.M) {
	if os.Getenv("TRAWL_BENCH") != "1" {
		os.Exit(m.Run())
	}
	// The bench measures release binaries: no -race.
	cleanup, err := harness.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	siteBin = filepath.Join(harness.BinDir, "site")
	out, err := exec.Command("go", "build", "-o", siteBin, "github.com/trawlhq/trawl/test/bench/cmd/site").CombinedOutput()
	if err != nil {
		cleanup()
		fmt.Fprintf(os.Stderr, "build site: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// config is read from the environment; the defaults are the performance goal's.
type config struct {
	Pages, Links, Text, Runs, Concurrency, StageRuns int
	Timeout                                          time.Duration
	Perf                                             bool     // profile crawler and processor with perf during the first Trawl run
	Profile                                          bool     // Go CPU and heap profiles (TRAWL_PPROF) during the first Trawl run
	SeedURLs                                         int      // >0: scenario trawl-seeded, on a frontier seeded with this many URLs and pages
	Scale                                            bool     // scenario trawl-2x2: two crawlers and two processors
	Env                                              []string // extra KEY=VALUE settings for every Trawl process
	OutDir                                           string   // where profiles go
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

func loadConfig(t *testing.T) config {
	c := config{
		Pages:       envInt(t, "BENCH_PAGES", 20000),
		Links:       envInt(t, "BENCH_LINKS", 10),
		Text:        envInt(t, "BENCH_TEXT", 8192),
		Runs:        envInt(t, "BENCH_RUNS", 3),
		Concurrency: envInt(t, "BENCH_CONCURRENCY", 32),
		StageRuns:   envInt(t, "BENCH_STAGE_RUNS", 1),
		Timeout:     time.Duration(envInt(t, "BENCH_TIMEOUT_S", 900)) * time.Second,
		Perf:        os.Getenv("BENCH_PERF") == "1",
		Profile:     os.Getenv("BENCH_PROFILE") == "1",
		SeedURLs:    envInt(t, "BENCH_SEED_URLS", 0),
		Scale:       os.Getenv("BENCH_SCALE") == "1",
		OutDir:      cmp.Or(os.Getenv("BENCH_OUT"), filepath.Join(os.TempDir(), "trawl-bench")),
		Env:         strings.Fields(os.Getenv("BENCH_TRAWL_ENV")),
	}
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "TRAWL_") && !slices.Contains([]string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"}, k) {
			t.Fatalf("BENCH_TRAWL_ENV: %q is not TRAWL_NAME=value (or GOGC, GOMEMLIMIT, GODEBUG, GOMAXPROCS)", kv)
		}
	}
	if c.Pages < 2 || c.Links < 1 || c.Text < 1 || c.Runs < 0 || c.Runs+c.StageRuns == 0 || c.Concurrency < 1 {
		t.Fatalf("bad bench config %+v", c)
	}
	return c
}

// benchEnv puts back the product defaults that test/harness shortens for tests (scheduler
// interval, heartbeats, retries, shutdown), so that the bench measures Trawl as shipped; warn
// logging keeps the output readable. BENCH_TRAWL_ENV comes after and wins.
func benchEnv() []string {
	return []string{"TRAWL_LOG_LEVEL=warn", "TRAWL_SCHEDULER_INTERVAL=250ms", "TRAWL_HEARTBEAT_INTERVAL=5s",
		"TRAWL_RETRY_BASE=5s", "TRAWL_RETRY_MAX=1h", "TRAWL_SHUTDOWN_TIMEOUT=30s"}
}

// sample is one measured run of one scenario.
type sample struct {
	Pages   int64   `json:"pages"`
	Seconds float64 `json:"seconds"`
	// CPU is CPU seconds per 1,000 pages and RSS peak RSS in MB, by process (crawler,
	// processor, dashboard, colly, site, broker, postgres).
	CPU map[string]float64 `json:"cpu_s_per_1k"`
	RSS map[string]float64 `json:"rss_mb,omitempty"`
	// Extra holds scenario figures such as colly's duplicate fetches.
	Extra map[string]float64 `json:"extra,omitempty"`
}

func (s sample) rate() float64 { return float64(s.Pages) / s.Seconds }

// TestBench runs every scenario and prints a markdown table and one JSON line.
func TestBench(t *testing.T) {
	if os.Getenv("TRAWL_BENCH") != "1" {
		t.Skip("set TRAWL_BENCH=1 (or run make bench)")
	}
	cfg := loadConfig(t)
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startSite(t, cfg)
	sitePages = testsite.NewBench(testsite.Scenario{Pages: cfg.Pages, Links: cfg.Links, TextBytes: cfg.Text})
	results := map[string][]sample{}
	var seeded trawlRun
	if cfg.SeedURLs > 0 && cfg.Runs > 0 {
		seeded.seedURLs = cfg.SeedURLs
		seeded.seedFrom, seeded.seedSeconds = seedTemplate(t, cfg.SeedURLs)
	}
	loadBefore := loadAvg()
	started := time.Now().UTC()
	for i := range cfg.Runs {
		// Alternate, so that a noisy minute on the shared machine hits both.
		order := []string{"colly", "trawl", "colly-gogc"}
		if cfg.SeedURLs > 0 {
			order = append(order, "trawl-seeded")
		}
		if cfg.Scale {
			order = append(order, "trawl-2x2")
		}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, name := range order {
			t.Run(fmt.Sprintf("%s-%d", name, i+1), func(t *testing.T) {
				var s sample
				switch name {
				case "colly":
					s = runColly(t, srv, cfg, 0)
				case "colly-gogc":
					s = runColly(t, srv, cfg, service.DefaultGCPercent)
				case "trawl":
					s = runTrawl(t, srv, cfg, trawlRun{perf: cfg.Perf && i == 0, pprof: cfg.Profile && i == 0})
				case "trawl-seeded":
					run := seeded
					run.explain = i == 0
					s = runTrawl(t, srv, cfg, run)
				case "trawl-2x2":
					s = runTrawl(t, srv, cfg, trawlRun{crawlers: 2, processors: 2})
				}
				t.Logf("%s run %d: %d pages in %.2fs = %.0f pages/s; cpu %v; rss %v; %v (load %s)",
					name, i+1, s.Pages, s.Seconds, s.rate(), s.CPU, s.RSS, s.Extra, loadAvg())
				results[name] = append(results[name], s)
			})
		}
	}
	for i := range cfg.StageRuns {
		for _, name := range []string{"crawler-only", "processor-only"} {
			t.Run(fmt.Sprintf("%s-%d", name, i+1), func(t *testing.T) {
				var s, d sample
				if name == "crawler-only" {
					s = runCrawlerOnly(t, srv, cfg)
				} else {
					s, d = runProcessorOnly(t, srv, cfg)
					results["dispatch"] = append(results["dispatch"], d)
				}
				t.Logf("%s run %d: %d in %.2fs = %.0f/s; cpu %v; rss %v (load %s)", name, i+1, s.Pages, s.Seconds, s.rate(), s.CPU, s.RSS, loadAvg())
				results[name] = append(results[name], s)
			})
		}
	}
	report(t, cfg, results, started, loadBefore)
}

func startSite(t *testing.T, cfg config) string {
	t.Helper()
	cmd := exec.Command(siteBin, "-pages", strconv.Itoa(cfg.Pages), "-links", strconv.Itoa(cfg.Links), "-text", strconv.Itoa(cfg.Text))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("site: %v", err)
	}
	siteProc.Store(int64(cmd.Process.Pid))
	return strings.TrimSpace(line)
}

var siteProc atomic.Int64

// meter samples CPU of named processes and of the broker and database process groups.
type meter struct {
	pids   map[string]int
	start  map[string]float64
	groups map[string]*group
}

func startMeter(t *testing.T, pids map[string]int) *meter {
	t.Helper()
	m := &meter{pids: pids, start: map[string]float64{}, groups: map[string]*group{
		"broker": startGroup("beam.smp"), "postgres": startGroup("postgres")}}
	m.pids["site"] = int(siteProc.Load())
	for name, pid := range pids {
		c, err := cpuSeconds(pid)
		if err != nil {
			t.Fatalf("%s (pid %d): %v", name, pid, err)
		}
		m.start[name] = c
		if name == "site" || name == "colly" {
			_ = resetPeakRSS(pid) // long-lived processes: measure this run's peak
		}
	}
	return m
}

func (m *meter) finish(t *testing.T, pages int64, s *sample) {
	t.Helper()
	s.Pages = pages
	s.CPU, s.RSS = map[string]float64{}, map[string]float64{}
	per1k := func(sec float64) float64 { return sec / float64(max(pages, 1)) * 1000 }
	for name, pid := range m.pids {
		c, err := cpuSeconds(pid)
		if err != nil {
			t.Errorf("%s (pid %d): %v", name, pid, err)
			continue
		}
		s.CPU[name] = per1k(c - m.start[name])
		if kb, err := statusKB(pid, "VmHWM"); err == nil {
			s.RSS[name] = float64(kb) / 1024
		}
	}
	for name, g := range m.groups {
		if d, ok := g.delta(); ok {
			s.CPU[name] = per1k(d)
		}
	}
}

// runColly crawls the site with bare colly. gcPercent > 0 runs it with that GOGC instead of Go's
// default (colly-gogc: the setting Trawl's crawler and processor use, for a like-for-like ratio).
func runColly(t *testing.T, base string, cfg config, gcPercent int) sample {
	t.Helper()
	if gcPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(gcPercent))
	}
	self := os.Getpid()
	m := startMeter(t, map[string]int{"colly": self})
	c := colly.NewCollector(colly.Async(true))
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: cfg.Concurrency}); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * cfg.Concurrency,
		MaxIdleConnsPerHost: 2 * cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	defer tr.CloseIdleConnections()
	c.WithTransport(tr)
	var fetches, errs atomic.Int64
	var seen sync.Map
	var pages atomic.Int64
	c.OnResponse(func(r *colly.Response) {
		fetches.Add(1)
		if _, dup := seen.LoadOrStore(r.Request.URL.String(), true); !dup {
			pages.Add(1)
		}
	})
	c.OnError(func(*colly.Response, error) { errs.Add(1) })
	c.OnHTML("a[href]", func(e *colly.HTMLElement) { _ = e.Request.Visit(e.Attr("href")) })
	start := time.Now()
	if err := c.Visit(base + "/"); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	var s sample
	s.Seconds = time.Since(start).Seconds()
	m.finish(t, pages.Load(), &s)
	s.Extra = map[string]float64{"duplicate_fetches": float64(fetches.Load() - pages.Load()), "errors": float64(errs.Load())}
	if int(pages.Load()) != cfg.Pages {
		t.Errorf("colly fetched %d distinct pages, want %d", pages.Load(), cfg.Pages)
	}
	return s
}

// waitReady polls a health endpoint until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// profile runs perf on pid until the returned function is called, then writes a text report.
func profile(t *testing.T, cfg config, name string, pid int) func() {
	t.Helper()
	data := filepath.Join(cfg.OutDir, name+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", data, "-p", strconv.Itoa(pid))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Logf("perf unavailable: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		rep := filepath.Join(cfg.OutDir, name+".perf.txt")
		out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.7", "-g", "none").Output()
		if err != nil {
			t.Logf("perf report %s: %v", name, err)
			return
		}
		_ = os.WriteFile(rep, out, 0o644)
		t.Logf("profile of %s: %s (perf report -i %s)", name, rep, data)
	}
}

// trawlRun shapes one end-to-end run.
type trawlRun struct {
	crawlers, processors int     // 0 means 1; each crawler has cfg.Concurrency
	perf                 bool    // perf record the first crawler and processor
	pprof                bool    // Go CPU and heap profiles of the first crawler and processor
	seedURLs             int     // the database holds a done target this big before the clock…
	seedFrom             string  // …copied from this seeded template database (seedTemplate)
	seedSeconds          float64 // how long loading the template took
	explain              bool    // after the run, capture the plans of dispatch and persist
}

// procName names the i-th of n processes of a kind in the meter: "crawler" when alone,
// "crawler#1", "crawler#2"… otherwise (summed back into "crawler" by sumKinds).
func procName(kind string, i, n int) string {
	if n == 1 {
		return kind
	}
	return fmt.Sprintf("%s#%d", kind, i+1)
}

// sumKinds folds "kind#i" entries into "kind": CPU is summed, RSS is the largest process's.
func sumKinds(s *sample) {
	for name, c := range s.CPU {
		if kind, _, ok := strings.Cut(name, "#"); ok {
			s.CPU[kind] += c
			delete(s.CPU, name)
		}
	}
	for name, r := range s.RSS {
		if kind, _, ok := strings.Cut(name, "#"); ok {
			s.RSS[kind] = max(s.RSS[kind], r)
			delete(s.RSS, name)
		}
	}
}

func runTrawl(t *testing.T, base string, cfg config, run trawlRun) sample {
	t.Helper()
	crawlers, processors := max(run.crawlers, 1), max(run.processors, 1)
	env := append(benchEnv(), cfg.Env...)
	if run.pprof {
		env = append(env, "TRAWL_PPROF=true")
	}
	var sys *harness.System
	if run.seedFrom != "" {
		start := time.Now()
		dsn := testenv.DatabaseFrom(t, run.seedFrom)
		t.Logf("copied the seeded database in %.1fs", time.Since(start).Seconds())
		sys = harness.NewSystemOn(t, dsn, env...)
	} else {
		sys = harness.NewSystem(t, env...)
	}
	addr := harness.FreeAddr(t)
	dash := sys.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+addr)
	sys.Addr = "http://" + addr
	pids := map[string]int{"dashboard": dash.PID()}
	var crs, prs []*harness.Proc
	for i := range crawlers {
		p := sys.Start("crawler", nil, "TRAWL_CRAWLER_CONCURRENCY="+strconv.Itoa(cfg.Concurrency))
		crs = append(crs, p)
		pids[procName("crawler", i, crawlers)] = p.PID()
	}
	for i := range processors {
		p := sys.Start("processor", nil)
		prs = append(prs, p)
		pids[procName("processor", i, processors)] = p.PID()
	}
	waitReady(t, sys.Addr+"/healthz")
	for _, p := range append(slices.Clone(crs), prs...) {
		waitReady(t, "http://"+p.HealthAddr+"/readyz")
	}
	var stops []func()
	if run.perf {
		stops = append(stops, profile(t, cfg, "crawler", crs[0].PID()), profile(t, cfg, "processor", prs[0].PID()))
	}
	var prof *pprofRun
	if run.pprof {
		prof = startPprof(t, cfg, map[string]string{"crawler": crs[0].HealthAddr, "processor": prs[0].HealthAddr})
	}
	m := startMeter(t, pids)
	start := time.Now()
	var created struct {
		ID    int64  `json:"id"`
		Error string `json:"error"`
	}
	body := map[string]any{"seed_url": base + "/", "max_depth": 1000, "max_pages": cfg.Pages * 2, "per_host_rps": 0}
	if code := sys.API(http.MethodPost, "/api/targets", body, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/targets = %d (%s)", code, created.Error)
	}
	if prof != nil {
		prof.watch(sys.Addr, created.ID, cfg.Pages)
	}
	st := sys.WaitDone(created.ID, cfg.Timeout)
	var s sample
	s.Seconds = time.Since(start).Seconds()
	m.finish(t, st.Fetched, &s)
	sumKinds(&s)
	for _, stop := range stops {
		stop()
	}
	if prof != nil {
		prof.finish(t)
	}
	if st.Fetched != int64(cfg.Pages) || st.Failed != 0 {
		t.Errorf("target done with %+v, want %d fetched and none failed", st, cfg.Pages)
	}
	if run.seedURLs > 0 {
		s.Extra = map[string]float64{"seed_urls": float64(run.seedURLs), "seed_seconds": run.seedSeconds}
	}
	// The clock above stops when every page is stored; search vectors are built in the
	// background (docs/adr/0030-search-indexed-off-the-persist-path.md). Also time until every
	// page is searchable.
	testenv.Eventually(t, cfg.Timeout, 100*time.Millisecond, "every page searchable", func() bool {
		var ov struct {
			Backlog *int64 `json:"search_backlog"`
		}
		return sys.API(http.MethodGet, "/api/overview", nil, &ov) == http.StatusOK && ov.Backlog != nil && *ov.Backlog == 0
	})
	if s.Extra == nil {
		s.Extra = map[string]float64{}
	}
	s.Extra["searchable_seconds"] = time.Since(start).Seconds()
	if run.explain {
		for _, p := range append(crs, prs...) { // nobody else may dispatch or persist now
			sys.Stop(p, 30*time.Second)
		}
		seq := explainSeeded(t, base, cfg, sys.DSN, run.seedURLs)
		for _, q := range seq {
			t.Logf("SEQUENTIAL SCAN on the seeded database: %s", q)
		}
		if s.Extra == nil {
			s.Extra = map[string]float64{}
		}
		s.Extra["explain_seq_scans"] = float64(len(seq))
	}
	return s
}

func publishAll(t *testing.T, exchange, key string, msgs []message.Encoded) {
	t.Helper()
	pub := newPublisher(t, "bench-fill")
	for chunk := range slices.Chunk(msgs, 500) {
		if err := pub.Publish(t.Context(), exchange, key, chunk...); err != nil {
			t.Fatal(err)
		}
	}
}

// newPublisher returns a confirming publisher on its own connection, closed when tb ends.
func newPublisher(tb testing.TB, name string) *pipeline.Publisher {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	conn, err := pipeline.NewConn(testenv.AMQPURL(), name, log)
	if err != nil {
		tb.Fatal(err)
	}
	pub := pipeline.NewPublisher(conn, log)
	tb.Cleanup(func() {
		_ = pub.Close()
		_ = conn.Close()
	})
	return pub
}

// runCrawlerOnly pre-fills crawl.jobs with one job per page, packed as the scheduler packs them
// (8 a message), starts one crawler and counts the jobs whose results the broker confirmed into
// the pages queue, which nobody consumes (the crawler's trawl_crawler_jobs_done_total).
func runCrawlerOnly(t *testing.T, base string, cfg config) sample {
	t.Helper()
	sys := harness.NewSystem(t, append(benchEnv(), cfg.Env...)...)
	jobs := make([]message.CrawlJob, cfg.Pages)
	for i := range cfg.Pages {
		jobs[i] = message.CrawlJob{Envelope: message.NewEnvelope(message.TypeCrawlJob), Kind: message.KindPage,
			URLID: int64(i + 1), TargetID: 1, URL: base + testsite.PagePath(i), Depth: 1, Dispatch: 1}
	}
	msgs, err := message.JobMessages(jobs, 8)
	if err != nil {
		t.Fatal(err)
	}
	publishAll(t, sys.Topo.CrawlExchange(), pipeline.KeyJob, msgs)
	cr := sys.Start("crawler", nil, "TRAWL_CRAWLER_CONCURRENCY="+strconv.Itoa(cfg.Concurrency))
	waitReady(t, "http://"+cr.HealthAddr+"/readyz")
	m := startMeter(t, map[string]int{"crawler": cr.PID()})
	start := time.Now()
	testenv.Eventually(t, cfg.Timeout, 50*time.Millisecond, "every job done", func() bool {
		return scrapeCounter(t, "http://"+cr.HealthAddr+"/metrics", "trawl_crawler_jobs_done_total") >= float64(cfg.Pages)
	})
	var s sample
	s.Seconds = time.Since(start).Seconds()
	m.finish(t, int64(cfg.Pages), &s)
	return s
}

// packResults packs encoded results per messages, as a crawler packs a burst's.
func packResults(msgs []message.Encoded, per int) []message.Encoded {
	var out []message.Encoded
	for len(msgs) > 0 {
		n := min(per, len(msgs))
		parts := make([][]byte, n)
		for i := range parts {
			parts[i] = msgs[i].Body
		}
		out = append(out, message.Encoded{ID: message.NewID(), Type: message.TypeFetchResults, Body: message.PackResults(parts)})
		msgs = msgs[n:]
	}
	return out
}

// scrapeCounter reads one unlabelled metric from a Prometheus text endpoint (0 if absent).
func scrapeCounter(t *testing.T, u, name string) float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("scrape %s: %s: %v", u, name, err)
			}
			return f
		}
	}
	return 0
}

// runProcessorOnly seeds a target whose frontier holds every page of the site, measures the
// scheduler's dispatch rate leasing them all (store.Dispatch, in this process), fills the pages
// queue with a FetchResult for each, and times one processor until the target is done.
func runProcessorOnly(t *testing.T, base string, cfg config) (proc, dispatch sample) {
	t.Helper()
	ctx := t.Context()
	sys := harness.NewSystem(t, append(benchEnv(), cfg.Env...)...)
	st, err := store.Open(ctx, sys.DSN, 4, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seed, err := crawlurl.Canonicalize(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := st.CreateTarget(ctx, target.Spec{SeedURL: seed, Scope: "host",
		MaxDepth: 1000, MaxPages: cfg.Pages * 2, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	pol := process.Policy{RetryBase: time.Second, RetryMax: time.Minute, Canon: crawlurl.Default}
	lim := store.DispatchLimits{MaxInFlight: cfg.Pages * 2, HostMaxInFlight: 256, Hosts: 64, Lease: time.Hour}
	jobs, err := st.Dispatch(ctx, lim)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("dispatch seed: %v, %d jobs", err, len(jobs))
	}
	all := make([]string, cfg.Pages)
	pageOf := map[string]int{}
	for i := range cfg.Pages {
		all[i] = base + testsite.PagePath(i)
		pageOf[all[i]] = i
		if c, err := crawlurl.Canonicalize(all[i]); err == nil {
			pageOf[c] = i
		}
	}
	seedRes := result(jobs[0], 0, cfg)
	seedRes.Links = all
	if _, err := st.ApplyResults(ctx, []store.Result{seedRes}, pol); err != nil {
		t.Fatal(err)
	}
	// Dispatch rate: lease every URL, 256 per call as one scheduler tick does for one host (the
	// per-host cap grows by 256 each call, as if the previous leases had been processed).
	var calls int
	dstart := time.Now()
	jobs = jobs[:0]
	for {
		lim.HostMaxInFlight = len(jobs) + 256
		got, err := st.Dispatch(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(got) == 0 {
			break
		}
		jobs = append(jobs, got...)
	}
	dispatch.Seconds = time.Since(dstart).Seconds()
	dispatch.Pages = int64(len(jobs))
	dispatch.Extra = map[string]float64{"calls": float64(calls), "ms_per_call": dispatch.Seconds * 1000 / float64(calls)}
	if len(jobs) != cfg.Pages-1 {
		t.Fatalf("dispatched %d URLs, want %d", len(jobs), cfg.Pages-1)
	}
	msgs := make([]message.Encoded, len(jobs))
	for i, j := range jobs {
		n, ok := pageOf[j.URL]
		if !ok {
			t.Fatalf("dispatched %q, not a site page", j.URL)
		}
		r := result(j, n, cfg)
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
			URLID: r.URLID, TargetID: r.TargetID, URL: r.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "bench",
			FinalURL: r.FinalURL, Status: r.Status, ContentType: r.ContentType, Title: r.Title, Text: r.Text,
			Links: r.Links, ContentHash: r.ContentHash, Size: r.Size, StartedAt: r.StartedAt, DurationMS: r.DurationMS}
		b, err := message.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = message.Encoded{ID: fr.ID, Type: fr.Type, Body: b}
	}
	publishAll(t, sys.Topo.PagesExchange(), pipeline.KeyPage, packResults(msgs, 8))
	pr := sys.Start("processor", nil)
	m := startMeter(t, map[string]int{"processor": pr.PID()})
	start := time.Now()
	testenv.Eventually(t, cfg.Timeout, 50*time.Millisecond, "target to finish", func() bool {
		got, err := st.Target(ctx, tgt.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.URLsDone+got.URLsFailed >= got.URLsTotal
	})
	proc.Seconds = time.Since(start).Seconds()
	m.finish(t, int64(len(jobs)), &proc)
	got, _ := st.Target(ctx, tgt.ID)
	if got.URLsDone != int64(cfg.Pages) || got.URLsFailed != 0 {
		t.Errorf("target: %d done, %d failed, want %d done", got.URLsDone, got.URLsFailed, cfg.Pages)
	}
	return proc, dispatch
}

// result is the store.Result a crawler would report for page n.
func result(j store.Job, n int, cfg config) store.Result {
	_ = cfg
	srv := strings.TrimSuffix(j.URL, testsite.PagePath(n))
	text := sitePages.Text(n)
	links := make([]string, 0, len(sitePages.Links(n)))
	for _, l := range sitePages.Links(n) {
		links = append(links, srv+testsite.PagePath(l))
	}
	sum := sha256.Sum256([]byte(text))
	return store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, FinalURL: j.URL, Status: 200,
		ContentType: "text/html; charset=utf-8", Title: "Page " + strconv.Itoa(n), Text: text, Links: links,
		ContentHash: hex.EncodeToString(sum[:]), Size: len(text) + 600, StartedAt: time.Now(), DurationMS: 1}
}

// sitePages is the same site as the server's (same options and seed), for building results.
var sitePages *testsite.Bench

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(t *testing.T, cfg config, results map[string][]sample, started time.Time, loadBefore string) {
	t.Helper()
	rates := func(name string) []float64 {
		var out []float64
		for _, s := range results[name] {
			out = append(out, s.rate())
		}
		return out
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "\n### Trawl bench, %s, host %s, %d CPUs\n\n", started.Format(time.DateTime+" MST"), host, runtime.NumCPU())
	fmt.Fprintf(&b, "Site: %d pages, %d links/page, %d B text/page; crawler concurrency %d; extra env %q; load average before %s, after %s.\n\n",
		cfg.Pages, cfg.Links, cfg.Text, cfg.Concurrency, cfg.Env, loadBefore, loadAvg())
	b.WriteString("| scenario | unit | median /s | runs /s |\n|---|---|---:|---|\n")
	for _, name := range []string{"colly", "colly-gogc", "trawl", "trawl-seeded", "trawl-2x2", "crawler-only", "processor-only", "dispatch"} {
		if len(results[name]) == 0 {
			continue
		}
		unit := map[string]string{"colly-gogc": fmt.Sprintf("pages (colly at GOGC=%d, as Trawl's binaries run)", service.DefaultGCPercent), "trawl-seeded": "pages (seeded frontier)", "trawl-2x2": "pages (2 crawlers + 2 processors)", "dispatch": "URLs leased", "crawler-only": "results published", "processor-only": "results persisted"}[name]
		var runs []string
		for _, r := range rates(name) {
			runs = append(runs, fmt.Sprintf("%.0f", r))
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s |\n", name, cmp.Or(unit, "pages"), median(rates(name)), strings.Join(runs, ", "))
	}
	var ratio float64 // 0 when either side did not run (JSON has no NaN)
	if c := median(rates("colly")); c > 0 {
		ratio = median(rates("trawl")) / c
	}
	fmt.Fprintf(&b, "\nTrawl/colly = **%.2f** (goal ≥ 0.50)\n", ratio)
	var sameGC float64
	if c := median(rates("colly-gogc")); c > 0 {
		sameGC = median(rates("trawl")) / c
		fmt.Fprintf(&b, "\nAgainst colly with the same garbage-collector setting as Trawl's binaries (GOGC=%d): Trawl/colly = %.2f.\n",
			service.DefaultGCPercent, sameGC)
	}
	var searchable []float64
	for _, s := range results["trawl"] {
		if v := s.Extra["searchable_seconds"]; v > 0 {
			searchable = append(searchable, float64(s.Pages)/v)
		}
	}
	if len(searchable) > 0 {
		fmt.Fprintf(&b, "\nCounting until every page is also searchable (search vectors are built in the background): trawl %.0f pages/s (median), Trawl/colly = %.2f.\n",
			median(searchable), median(searchable)/max(median(rates("colly")), 1))
	}
	// Each side's median over the runs that ran; 0 when either side did not run.
	vs := func(name string) float64 {
		if d := median(rates("trawl")); d > 0 && len(results[name]) > 0 {
			return median(rates(name)) / d
		}
		return 0
	}
	var seedSecs, seqScans []float64
	for _, s := range results["trawl-seeded"] {
		seedSecs = append(seedSecs, s.Extra["seed_seconds"])
		if n, ok := s.Extra["explain_seq_scans"]; ok {
			seqScans = append(seqScans, n)
		}
	}
	if len(results["trawl-seeded"]) > 0 {
		fmt.Fprintf(&b, "\nSeeded/empty = **%.2f** (goal ≥ 0.80): the database held a done target of %d URLs and %d pages on %d hosts, loaded with COPY in %.1f s once and copied for each run (not in the clock). Plans: explain-seeded.txt (%v sequential scans of urls/pages).\n",
			vs("trawl-seeded"), cfg.SeedURLs, cfg.SeedURLs, seedHosts, median(seedSecs), seqScans)
	}
	if len(results["trawl-2x2"]) > 0 {
		fmt.Fprintf(&b, "\n2+2/1+1 = **%.2f** (goal ≥ 1.00): two crawlers (concurrency %d each) and two processors against one of each; CPU below is summed per kind, RSS is the largest process of the kind.\n",
			vs("trawl-2x2"), cfg.Concurrency)
	}
	if cfg.Profile {
		fmt.Fprintf(&b, "\nGo profiles of the first trawl run: %s\n", filepath.Join(cfg.OutDir, "profiles"))
	}
	b.WriteString("\n")
	b.WriteString("| scenario | process | CPU s / 1,000 pages (median) | peak RSS MB (max) |\n|---|---|---:|---:|\n")
	cpu := map[string]map[string]float64{}
	peak := map[string]map[string]float64{} // peak RSS MB, for the JSON line
	for _, name := range []string{"colly", "colly-gogc", "trawl", "trawl-seeded", "trawl-2x2", "crawler-only", "processor-only"} {
		if len(results[name]) == 0 {
			continue
		}
		procs := map[string]bool{}
		for _, s := range results[name] {
			for p := range s.CPU {
				procs[p] = true
			}
		}
		cpu[name], peak[name] = map[string]float64{}, map[string]float64{}
		for _, p := range slices.Sorted(func(yield func(string) bool) {
			for p := range procs {
				if !yield(p) {
					return
				}
			}
		}) {
			var cs []float64
			var rss float64
			for _, s := range results[name] {
				cs = append(cs, s.CPU[p])
				rss = max(rss, s.RSS[p])
			}
			cpu[name][p] = median(cs)
			r := "–"
			if rss > 0 {
				peak[name][p] = rss
				r = fmt.Sprintf("%.0f", rss)
			}
			fmt.Fprintf(&b, "| %s | %s | %.3f | %s |\n", name, p, median(cs), r)
		}
	}
	b.WriteString("\n(broker = every beam.smp, postgres = every postgres process on the machine: shared services, so other users' load is included.)\n")
	var dups []float64
	for _, s := range results["colly"] {
		dups = append(dups, s.Extra["duplicate_fetches"])
	}
	line := map[string]any{
		"date": started.Format(time.RFC3339), "pages": cfg.Pages, "links": cfg.Links, "text_bytes": cfg.Text,
		"runs": cfg.Runs, "concurrency": cfg.Concurrency, "env": cfg.Env, "load_before": loadBefore, "load_after": loadAvg(),
		"colly_pages_s": median(rates("colly")), "trawl_pages_s": median(rates("trawl")), "ratio_trawl_colly": ratio,
		"colly_gogc_pages_s": median(rates("colly-gogc")), "ratio_trawl_colly_same_gc": sameGC,
		"crawler_only_s": median(rates("crawler-only")), "processor_only_s": median(rates("processor-only")),
		"dispatch_rows_s": median(rates("dispatch")), "colly_duplicate_fetches": median(dups), "cpu_s_per_1k": cpu, "rss_mb": peak,
	}
	if len(searchable) > 0 {
		line["trawl_searchable_pages_s"] = median(searchable)
	}
	if len(results["trawl-seeded"]) > 0 {
		line["trawl_seeded_pages_s"] = median(rates("trawl-seeded"))
		line["seeded_ratio"] = vs("trawl-seeded")
		line["seed_urls"] = cfg.SeedURLs
		line["seed_seconds"] = median(seedSecs)
		line["explain_seq_scans"] = seqScans
	}
	if len(results["trawl-2x2"]) > 0 {
		line["trawl_2x2_pages_s"] = median(rates("trawl-2x2"))
		line["scale_ratio_2x2"] = vs("trawl-2x2")
	}
	j, _ := json.Marshal(line)
	fmt.Println(b.String())
	fmt.Println(string(j))
	_ = os.WriteFile(filepath.Join(cfg.OutDir, "bench.md"), []byte(b.String()), 0o644)
	_ = os.WriteFile(filepath.Join(cfg.OutDir, "bench.json"), append(j, '\n'), 0o644)
}
