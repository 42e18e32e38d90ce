package e2e

import (
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/trawlhq/trawl/service"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// TestMetricsAfterCrawl scrapes every binary after a small crawl and finds the work in its
// metrics. The crawler serves /metrics on its health address (TRAWL_METRICS_ADDR unset), the
// processor on a separate TRAWL_METRICS_ADDR, the dashboard on its own address. The crawler is
// also given a broker list whose first address is dead (TRAWL_AMQP_URL failover).
func TestMetricsAfterCrawl(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 60, Traps: true})
	defer site.Close()

	sys := NewSystem(t)
	dashAddr := harness.FreeAddr(t)
	sys.Start("dashboard", nil, "TRAWL_DASHBOARD_ADDR="+dashAddr)
	sys.Addr = "http://" + dashAddr
	// The crawler's broker list starts with a dead node: it must fail over to the live one.
	dead := harness.FreeAddr(t)
	crawler := sys.Start("crawler", nil, "TRAWL_CRAWLER_CONCURRENCY=8",
		"TRAWL_AMQP_URL=amqp://guest:guest@"+dead+"/,"+testenv.AMQPURL())
	procMetrics := harness.FreeAddr(t)
	sys.Start("processor", nil, "TRAWL_METRICS_ADDR="+procMetrics)
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, "dashboard to answer", func() bool {
		resp, err := http.Get(sys.Addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "max_depth": 100, "max_pages": 10000, "per_host_rps": 0})
	// Fetch history from 100 days ago, past the default retention (90 days): the processor that
	// runs the scheduler prunes it (process.Pruner), and keeps the crawl's own history.
	const old = 50
	query[int](t, sys.DSN, `INSERT INTO page_fetches (url_id, target_id, fetched_at, status)
		SELECT i, $1, now() - interval '100 days', 200 FROM generate_series(1, $2::int) i RETURNING 1`, id, old)
	sys.WaitDone(id, 2*time.Minute)
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "fetch history past its retention pruned", func() bool {
		return query[int64](t, sys.DSN, `SELECT count(*) FROM page_fetches WHERE fetched_at < now() - interval '90 days'`)[0] == 0
	})
	stored := float64(len(query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1`, id)))
	if stored < 60 {
		t.Fatalf("stored %v pages, want at least 60", stored)
	}
	if n := query[int64](t, sys.DSN, `SELECT count(*) FROM page_fetches WHERE target_id = $1`, id)[0]; float64(n) < stored {
		t.Errorf("%d fetches in the history after pruning, want at least the %v stored pages'", n, stored)
	}

	siteHost := mustHost(t, site.URL())
	crawlerM := scrape(t, "http://"+crawler.HealthAddr+"/metrics", siteHost)
	procM := scrape(t, "http://"+procMetrics+"/metrics", siteHost)
	dashM := scrape(t, sys.Addr+"/metrics", siteHost)

	atLeast := func(bin string, m metricSet, name string, labels map[string]string, min float64) {
		t.Helper()
		if got := m.sum(name, labels); got < min {
			t.Errorf("%s: %s%v = %v, want >= %v", bin, name, labels, got, min)
		}
	}
	for bin, m := range map[string]metricSet{"crawler": crawlerM, "processor": procM, "dashboard": dashM} {
		atLeast(bin, m, "go_goroutines", nil, 1)
		atLeast(bin, m, "process_resident_memory_bytes", nil, 1)
		atLeast(bin, m, "trawl_build_info", map[string]string{"binary": bin}, 1)
	}
	// The workers run with the product's runtime defaults (service.TuneProcs, service.TuneGC)
	// unless this environment sets its own.
	for bin, m := range map[string]metricSet{"crawler": crawlerM, "processor": procM} {
		if os.Getenv("GOMAXPROCS") == "" {
			if got := m.sum("go_sched_gomaxprocs_threads", nil); got != service.DefaultProcs {
				t.Errorf("%s: GOMAXPROCS %v, want %d", bin, got, service.DefaultProcs)
			}
		}
		if os.Getenv("GOGC") == "" {
			if got := m.sum("go_gc_gogc_percent", nil); got != service.DefaultGCPercent {
				t.Errorf("%s: GOGC %v, want %d", bin, got, service.DefaultGCPercent)
			}
		}
	}
	// The processor's soft memory limit follows its batch size and URL cache: 124 MiB at the
	// defaults, which keeps its RSS under the 150 MB goal
	// (docs/adr/0041-gogc-400-under-a-soft-memory-limit.md).
	if os.Getenv("GOMEMLIMIT") == "" {
		if got := procM.sum("go_gc_gomemlimit_bytes", nil); got < 64<<20 || got > 125<<20 {
			t.Errorf("processor: GOMEMLIMIT %v bytes, want 64–125 MiB", got)
		}
	}

	// The crawler fetched every stored page, met the 404 and the flaky 500, and published a
	// confirmed result for each fetch.
	atLeast("crawler", crawlerM, "trawl_crawler_fetches_total", map[string]string{"outcome": "ok", "status_class": "2xx"}, stored-5)
	atLeast("crawler", crawlerM, "trawl_crawler_fetches_total", map[string]string{"status_class": "4xx"}, 1)
	atLeast("crawler", crawlerM, "trawl_crawler_fetches_total", map[string]string{"status_class": "5xx"}, testsite.BrokenFailures)
	fetches := crawlerM.sum("trawl_crawler_fetches_total", nil)
	atLeast("crawler", crawlerM, "trawl_crawler_fetch_duration_seconds_count", nil, fetches)
	atLeast("crawler", crawlerM, "trawl_crawler_fetched_bytes_total", nil, stored*1000)
	// Up to 8 results share a message (TRAWL_CRAWLER_RESULTS_PER_MESSAGE), and 8 jobs one
	// crawl job message (TRAWL_SCHEDULER_JOBS_PER_MESSAGE): a confirm covers a message.
	atLeast("crawler", crawlerM, "trawl_broker_publish_confirms_total", nil, math.Ceil(fetches/8))
	if !crawlerM.has("trawl_inflight_messages") {
		t.Error("crawler: no trawl_inflight_messages")
	}

	// The processor persisted the results in batches, dispatched every URL and retried the 500.
	atLeast("processor", procM, "trawl_processor_results_persisted_total", map[string]string{"effect": "applied"}, stored)
	atLeast("processor", procM, "trawl_processor_persist_batch_duration_seconds_count", nil, 1)
	atLeast("processor", procM, "trawl_processor_urls_discovered_total", nil, stored-1)
	atLeast("processor", procM, "trawl_processor_retries_scheduled_total", nil, testsite.BrokenFailures)
	atLeast("processor", procM, "trawl_scheduler_dispatched_total", nil, stored)
	atLeast("processor", procM, "trawl_processor_pruned_rows_total", map[string]string{"table": "page_fetches"}, old)
	atLeast("processor", procM, "trawl_broker_publish_confirms_total", nil, math.Ceil(stored/8))
	if !procM.has("trawl_inflight_messages") {
		t.Error("processor: no trawl_inflight_messages")
	}

	// The dashboard answered the POST and the status polls.
	atLeast("dashboard", dashM, "trawl_dashboard_http_requests_total", map[string]string{"method": "post", "code": "201"}, 1)
	atLeast("dashboard", dashM, "trawl_dashboard_http_requests_total", map[string]string{"method": "get", "code": "200"}, 2)
}

// metricSet is one scrape, by family name.
type metricSet map[string]*dto.MetricFamily

func (m metricSet) has(name string) bool { return m[name] != nil }

// sum adds up the samples of name whose labels include labels. Histograms are reached through
// their _count and _sum series.
func (m metricSet) sum(name string, labels map[string]string) float64 {
	base, field := name, ""
	if m[name] == nil {
		for _, suf := range []string{"_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suf); ok && m[b] != nil {
				base, field = b, suf
			}
		}
	}
	mf := m[base]
	if mf == nil {
		return 0
	}
	var total float64
outer:
	for _, s := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range s.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue outer
			}
		}
		switch {
		case field == "_count":
			total += float64(s.GetHistogram().GetSampleCount())
		case field == "_sum":
			total += s.GetHistogram().GetSampleSum()
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Untyped != nil:
			total += s.GetUntyped().GetValue()
		}
	}
	return total
}

// scrape fetches and parses a /metrics page, and fails if any label value names the crawled
// host.
func scrape(t *testing.T, u, forbiddenHost string) metricSet {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", u, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	for name, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if strings.Contains(lp.GetValue(), forbiddenHost) || strings.Contains(lp.GetValue(), "://") {
					t.Errorf("%s: %s has label %s=%q: no URL or host in labels", u, name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	return metricSet(mfs)
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname() + ":" + u.Port()
}
