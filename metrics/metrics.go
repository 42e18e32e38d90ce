// Package metrics defines every Prometheus metric the Trawl binaries export and builds each
// process's private registry. The collectors are package variables so that the pipeline,
// crawl and process packages can count with a one-line call; each binary registers them in its
// own registry (never the global default one) together with the Go runtime and process
// collectors, and serves that registry on /metrics.
//
// No metric carries a URL or a host name in a label: every label has a small, fixed set of
// values, so the number of series stays bounded however large the crawl.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Trawl metric.
const Namespace = "trawl"

// Binaries.
const (
	Crawler   = "crawler"
	Processor = "processor"
	Dashboard = "dashboard"
)

// Crawler metrics.
var (
	Fetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "crawler", Name: "fetches_total",
		Help: "Fetches finished, by outcome (ok or an error class) and HTTP status class (2xx..5xx, none).",
	}, []string{"outcome", "status_class"})
	FetchDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "crawler", Name: "fetch_duration_seconds",
		Help:    "Time from request start to the end of the body (or the failure), per fetch.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	FetchedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "crawler", Name: "fetched_bytes_total",
		Help: "Response body bytes kept (after the body-size limit).",
	})
	JobsDone = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "crawler", Name: "jobs_done_total",
		Help: "Crawl jobs whose fetch result the broker confirmed (and which are acked or about to be).",
	})
	JobsExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "crawler", Name: "jobs_expired_total",
		Help: "Crawl jobs acked without fetching because their URL's lease ran out while they waited in the queue (the URL is dispatched again).",
	})
)

// Processor metrics.
var (
	ResultsPersisted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "results_persisted_total",
		Help: "Fetch results committed to Postgres, by effect: applied (changed the URL's state), duplicate, or dropped (their target is deleted or being deleted).",
	}, []string{"effect"})
	URLsDiscovered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "urls_discovered_total",
		Help: "New URLs inserted into the frontier.",
	})
	PersistBatchDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "persist_batch_duration_seconds",
		Help:    "Latency of one committed ApplyResults transaction (one batch).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	SearchIndexed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "search_indexed_total",
		Help: "Pages whose search vector the background indexer built.",
	})
	SearchIndexErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "search_index_errors_total",
		Help: "Failed search-indexing transactions (retried with backoff; their pages stay queued).",
	})
	PersistBatchErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "persist_batch_errors_total",
		Help: "Failed ApplyResults transactions, by kind: transient (retried) or data (batch split).",
	}, []string{"kind"})
	Retries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "retries_scheduled_total",
		Help: "Failed fetches rescheduled with backoff, counted once their batch commits.",
	})
	URLsFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "urls_failed_total",
		Help: "URLs given up on: permanent failure or out of attempts, counted once their batch commits.",
	})
	DeadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "dead_letters_total",
		Help: "Dead letters taken from the dead-letter queue and stored in Postgres (first time seen).",
	})
)

// Scheduler metrics (run by the processor).
var (
	Dispatched = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "dispatched_total",
		Help: "URLs leased and published as crawl jobs (confirmed by the broker).",
	})
	DispatchErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "dispatch_errors_total",
		Help: "Scheduler ticks that failed, in the database or on publish.",
	})
	LeaseExpiries = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "lease_expiries_total",
		Help: "Dispatched URLs whose lease expired and which were returned to the queue.",
	})
	SchedulerLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "scheduler", Name: "leader",
		Help: "1 while this processor runs the scheduler (one per database), 0 while it stands by.",
	})
	PurgedRows = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "deleted_target_rows_total",
		Help: "Rows of deleted targets removed by the processors' deleters (URLs, or fetch history, rates and sitemaps; cascades not counted).",
	})
	PrunedRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "processor", Name: "pruned_rows_total",
		Help: "Rows deleted by retention (TRAWL_FETCH_HISTORY_RETENTION, TRAWL_RATE_RETENTION), by table.",
	}, []string{"table"})
)

// Broker metrics, for every binary that talks to RabbitMQ.
var (
	PublishConfirms = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "publish_confirms_total",
		Help: "Publishes the broker confirmed (acked), events included.",
	})
	PublishNacks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "publish_nacks_total",
		Help: "Publishes the broker refused (nacked).",
	})
	PublishReturns = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "publish_returns_total",
		Help: "Mandatory publishes returned as unroutable.",
	})
	Reconnects = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "reconnects_total",
		Help: "Broker connections re-established after the previous one was lost.",
	})
	Poison = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "poison_messages_total",
		Help: "Messages that failed to decode and were rejected to the dead-letter queue, by message type.",
	}, []string{"type"})
	Splits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "broker", Name: "split_messages_total",
		Help: "Messages of several jobs or results republished one per message (after a redelivery, or when their items ended differently), by message type.",
	}, []string{"type"})
)

// Dashboard metrics.
var (
	HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "dashboard", Name: "http_requests_total",
		Help: "HTTP requests answered by the dashboard, by method and status code.",
	}, []string{"method", "code"})
)

// Def describes one Trawl metric.
type Def struct {
	Name      string // full name, e.g. trawl_crawler_fetches_total
	Type      string // counter, gauge or histogram
	Binaries  []string
	collector prometheus.Collector
}

// in-flight gauges are per binary and built by Registry.InFlight; they are listed here so that
// Defs is complete.
const inFlightName = Namespace + "_inflight_messages"

func defs() []Def {
	crawler, processor, all := []string{Crawler}, []string{Processor}, []string{Crawler, Processor, Dashboard}
	workers := []string{Crawler, Processor}
	return []Def{
		{"trawl_crawler_fetches_total", "counter", crawler, Fetches},
		{"trawl_crawler_fetch_duration_seconds", "histogram", crawler, FetchDuration},
		{"trawl_crawler_fetched_bytes_total", "counter", crawler, FetchedBytes},
		{"trawl_crawler_jobs_done_total", "counter", crawler, JobsDone},
		{"trawl_crawler_jobs_expired_total", "counter", crawler, JobsExpired},
		{"trawl_processor_results_persisted_total", "counter", processor, ResultsPersisted},
		{"trawl_processor_urls_discovered_total", "counter", processor, URLsDiscovered},
		{"trawl_processor_persist_batch_duration_seconds", "histogram", processor, PersistBatchDuration},
		{"trawl_processor_persist_batch_errors_total", "counter", processor, PersistBatchErrors},
		{"trawl_processor_search_indexed_total", "counter", processor, SearchIndexed},
		{"trawl_processor_search_index_errors_total", "counter", processor, SearchIndexErrors},
		{"trawl_processor_retries_scheduled_total", "counter", processor, Retries},
		{"trawl_processor_urls_failed_total", "counter", processor, URLsFailed},
		{"trawl_processor_dead_letters_total", "counter", processor, DeadLetters},
		{"trawl_scheduler_dispatched_total", "counter", processor, Dispatched},
		{"trawl_scheduler_dispatch_errors_total", "counter", processor, DispatchErrors},
		{"trawl_scheduler_lease_expiries_total", "counter", processor, LeaseExpiries},
		{"trawl_scheduler_leader", "gauge", processor, SchedulerLeader},
		{"trawl_processor_pruned_rows_total", "counter", processor, PrunedRows},
		{"trawl_processor_deleted_target_rows_total", "counter", processor, PurgedRows},
		{"trawl_broker_publish_confirms_total", "counter", all, PublishConfirms},
		{"trawl_broker_publish_nacks_total", "counter", all, PublishNacks},
		{"trawl_broker_publish_returns_total", "counter", all, PublishReturns},
		{"trawl_broker_reconnects_total", "counter", all, Reconnects},
		{"trawl_broker_poison_messages_total", "counter", workers, Poison},
		{"trawl_broker_split_messages_total", "counter", workers, Splits},
		{"trawl_dashboard_http_requests_total", "counter", []string{Dashboard}, HTTPRequests},
		{inFlightName, "gauge", workers, nil},
		{"trawl_build_info", "gauge", all, nil},
	}
}

// Defs lists every Trawl metric (not the Go runtime and process ones).
func Defs() []Def { return defs() }

// Registry is one process's private registry.
type Registry struct {
	*prometheus.Registry
	binary string
}

// New returns a registry for binary (Crawler, Processor or Dashboard) holding the Go runtime
// and process collectors, trawl_build_info and the binary's Trawl metrics.
func New(binary, version string) *Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels name the binary and its version.",
		ConstLabels: prometheus.Labels{"binary": binary, "version": version},
	})
	info.Set(1)
	r.MustRegister(info)
	for _, d := range defs() {
		for _, b := range d.Binaries {
			if b == binary && d.collector != nil {
				r.MustRegister(d.collector)
			}
		}
	}
	return &Registry{Registry: r, binary: binary}
}

// InFlight registers trawl_inflight_messages, read from f at each scrape: the messages this
// worker holds and has not acked yet.
func (r *Registry) InFlight(f func() int64) {
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: inFlightName,
		Help: "Messages this worker holds and has not acked yet (crawl jobs being fetched, results awaiting commit).",
	}, func() float64 { return float64(f()) }))
}

// Handler serves the registry in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry})
}

// Instrument counts the requests h answers in trawl_dashboard_http_requests_total.
func Instrument(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(HTTPRequests, h)
}

var fetchOutcomes = map[string]bool{
	"blocked": true, "cancelled": true, "dns": true, "invalid_url": true, "network": true,
	"refused": true, "timeout": true, "tls": true,
}

// ObserveFetch records one finished fetch. errClass is the fetcher's error class ("" for a
// response); status is 0 when there was no response.
func ObserveFetch(status int, failed bool, errClass string, d time.Duration, bytes int) {
	outcome := "ok"
	if failed {
		outcome = "other"
		if fetchOutcomes[errClass] {
			outcome = errClass
		}
	}
	Fetches.WithLabelValues(outcome, StatusClass(status)).Inc()
	FetchDuration.Observe(d.Seconds())
	if bytes > 0 {
		FetchedBytes.Add(float64(bytes))
	}
}

// StatusClass is "2xx" for 200..299 and so on, and "none" outside 100..599.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// ObserveBatch records one committed persist batch.
func ObserveBatch(applied, duplicates, discovered int, d time.Duration) {
	PersistBatchDuration.Observe(d.Seconds())
	ResultsPersisted.WithLabelValues("applied").Add(float64(applied))
	ResultsPersisted.WithLabelValues("duplicate").Add(float64(duplicates))
	URLsDiscovered.Add(float64(discovered))
}

// ObserveConfirm records one publisher confirm: ack true for a confirm, false for a nack.
func ObserveConfirm(ack bool) {
	if ack {
		PublishConfirms.Inc()
	} else {
		PublishNacks.Inc()
	}
}

// Exported returns the name of every series family the binaries can export, sorted: Trawl
// metrics (histograms with their _bucket, _sum and _count series) and the Go runtime and
// process metrics. Dashboards and alerts may query only these.
func Exported() []string {
	seen := map[string]bool{}
	for _, d := range defs() {
		if d.Type == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				seen[d.Name+s] = true
			}
			continue
		}
		seen[d.Name] = true
	}
	for _, bin := range []string{Crawler, Processor, Dashboard} {
		mfs, err := New(bin, "").Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			name := mf.GetName()
			switch mf.GetType().String() {
			case "HISTOGRAM":
				seen[name+"_bucket"], seen[name+"_sum"], seen[name+"_count"] = true, true, true
			case "SUMMARY":
				seen[name], seen[name+"_sum"], seen[name+"_count"] = true, true, true
			default:
				seen[name] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
