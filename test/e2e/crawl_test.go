package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

func query[T any](t *testing.T, dsn, sql string, args ...any) []T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func createTarget(t *testing.T, s *System, body map[string]any) int64 {
	t.Helper()
	var created struct {
		ID    int64  `json:"id"`
		Error string `json:"error"`
	}
	if code := s.API(http.MethodPost, "/api/targets", body, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/targets = %d (%s), want 201", code, created.Error)
	}
	return created.ID
}

// TestCrawlSiteEndToEnd is the pipeline's main promise: two crawlers and two processors crawl a
// 500-page site with cycles, duplicate links, fragments, external links, a 404, a flaky 500 and
// a redirect, and every in-scope page lands in Postgres exactly once.
func TestCrawlSiteEndToEnd(t *testing.T) {
	t.Parallel()
	external := testsite.NewCounter()
	defer external.Close()
	site := testsite.New(testsite.Options{Pages: 500, Traps: true, ExternalURL: external.URL()})
	defer site.Close()

	sys := NewSystem(t)
	sys.StartAll(2, 2)
	start := time.Now()
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "max_depth": 1000, "max_pages": 100000, "per_host_rps": 0})
	st := sys.WaitDone(id, 3*time.Minute)
	elapsed := time.Since(start)

	want := site.ExpectedURLs()
	stored := query[string](t, sys.DSN, `SELECT url FROM pages WHERE target_id = $1 ORDER BY url`, id)
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored pages (-want +got):\n%s", diff)
	}
	if n := external.Hits(); n != 0 {
		t.Errorf("external host fetched %d times, want 0: %v", n, external.Paths())
	}
	// Counts reported by the API match the database.
	counts := query[int64](t, sys.DSN, `
		SELECT count(*) FROM urls WHERE target_id = $1
		UNION ALL SELECT count(*) FILTER (WHERE state = 'done') FROM urls WHERE target_id = $1
		UNION ALL SELECT count(*) FILTER (WHERE state = 'failed') FROM urls WHERE target_id = $1
		UNION ALL SELECT count(*) FILTER (WHERE state IN ('queued', 'dispatched')) FROM urls WHERE target_id = $1`, id)
	if diff := cmp.Diff(counts, []int64{st.Discovered, st.Fetched, st.Failed, st.Pending}); diff != "" {
		t.Errorf("API counts (discovered, fetched, failed, pending) vs database (-db +api):\n%s", diff)
	}
	if st.Discovered != int64(len(want)) || st.Failed != 0 || st.Pending != 0 {
		t.Errorf("status = %+v, want %d discovered, none failed or pending", st, len(want))
	}
	// Statuses are recorded; the flaky page was retried until it answered 200; the 404 was not retried.
	statuses := map[string]int32{}
	for _, row := range query[[]any](t, sys.DSN, `SELECT ARRAY[url, status::text] FROM pages WHERE target_id = $1`, id) {
		var code int32
		fmt.Sscan(row[1].(string), &code)
		statuses[strings.TrimPrefix(row[0].(string), site.URL())] = code
	}
	for path, code := range map[string]int32{"/missing": 404, "/broken": 200, "/redirect": 301, "/file.pdf": 200, "/": 200} {
		if statuses[path] != code {
			t.Errorf("status of %s = %d, want %d", path, statuses[path], code)
		}
	}
	hits := site.Hits()
	if hits["/broken"] != 3 {
		t.Errorf("/broken fetched %d times, want 3 (two 500s, then 200)", hits["/broken"])
	}
	for path, n := range hits {
		if n != 1 && path != "/broken" {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
	// Pages that differ only by their query are pages of their own; the same query with its
	// parameters in another order is one of them, fetched once under its canonical URL.
	queryPages := 0
	for path, code := range statuses {
		if strings.HasPrefix(path, testsite.PathQuery+"?") {
			queryPages++
			if code != http.StatusOK {
				t.Errorf("status of %s = %d, want 200", path, code)
			}
		}
	}
	if queryPages != len(testsite.QueryPages) {
		t.Errorf("%d pages that differ only by query stored, want %d (%v)", queryPages, len(testsite.QueryPages), testsite.QueryPages)
	}
	if n := hits[testsite.QueryOrderVariant]; n != 0 {
		t.Errorf("%s fetched %d times: its parameters in another order should have made it %s", testsite.QueryOrderVariant, n, testsite.QueryPages[0])
	}
	t.Logf("crawled %d pages in %s: %.0f pages/s (2 crawlers, 2 processors, race=%t)",
		len(stored), elapsed.Round(time.Millisecond), float64(len(stored))/elapsed.Seconds(), raceEnabled)
}

// TestPerHostRateAcrossReplicas checks politeness held globally: with per_host_rps 5, requests
// from two crawler replicas arrive at the site at least 200 ms apart, with no slack.
func TestPerHostRateAcrossReplicas(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 12, LinksPerPage: 4})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(2, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 5})
	st := sys.WaitDone(id, 2*time.Minute)
	if st.Fetched != 12 {
		t.Fatalf("fetched %d, want 12", st.Fetched)
	}
	spacing, n := site.MinSpacing()
	// The interval itself, measured at the server.
	const interval = 200 * time.Millisecond
	if spacing < interval {
		t.Fatalf("minimum spacing between %d requests = %s, want >= %s", n, spacing, interval)
	}
	workers := query[string](t, sys.DSN, `SELECT DISTINCT url FROM pages WHERE target_id = $1`, id)
	t.Logf("min spacing %s over %d requests, %d pages", spacing, n, len(workers))
}

// TestBadTargetsAreRejected posts invalid targets: each gets a 400 naming the field, and
// nothing is stored.
func TestBadTargetsAreRejected(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	sys.StartAll(0, 0)
	tests := []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{}, "seed_url"},
		{map[string]any{"seed_url": "ftp://example.com/"}, "seed_url"},
		{map[string]any{"seed_url": "http://exa mple.com/%zz"}, "seed_url"},
		{map[string]any{"seed_url": "javascript:alert(1)"}, "seed_url"},
		{map[string]any{"seed_url": "http:///nohost"}, "seed_url"},
		{map[string]any{"seed_url": "http://example.com/", "max_pages": 0}, "max_pages"},
		{map[string]any{"seed_url": "http://example.com/", "max_depth": -1}, "max_depth"},
		{map[string]any{"seed_url": "http://example.com/", "per_host_rps": -2}, "per_host_rps"},
		{map[string]any{"seed_url": "http://example.com/", "per_host_rps": 0.0000001}, "per_host_rps"}, // wrapped to 16 days
		{map[string]any{"seed_url": "http://example.com/", "per_host_rps": 3.3e-7}, "per_host_rps"},    // was a 500
		{map[string]any{"seed_url": "http://example.com/", "max_pages": "many"}, "max_pages"},
		{map[string]any{"seed_url": "http://example.com/", "scope": "galaxy"}, "scope"},
		{map[string]any{"seed_url": "http://example.com/", "colour": "blue"}, "colour"},
	}
	for _, tt := range tests {
		var e struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		if code := sys.API(http.MethodPost, "/api/targets", tt.body, &e); code != http.StatusBadRequest || e.Field != tt.field {
			t.Errorf("POST %v = %d field=%q (%s), want 400 naming %q", tt.body, code, e.Field, e.Error, tt.field)
		}
	}
	var list struct {
		Targets []TargetStatus `json:"targets"`
	}
	sys.API(http.MethodGet, "/api/targets", nil, &list)
	if len(list.Targets) != 0 {
		t.Fatalf("targets after bad posts = %d, want 0", len(list.Targets))
	}
	if n := query[int64](t, sys.DSN, `SELECT count(*) FROM urls`); n[0] != 0 {
		t.Fatalf("urls stored = %d, want 0", n[0])
	}
	if code := sys.API(http.MethodGet, "/api/targets/999", nil, nil); code != http.StatusNotFound {
		t.Fatalf("GET unknown target = %d, want 404", code)
	}
}

// TestHostilePageIsStoredClean crawls a page whose title and text carry NUL bytes and invalid
// UTF-8: it is stored, cleaned, not rejected by Postgres.
func TestHostilePageIsStoredClean(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, "<html><head><title>Bad\x00title \xff\xfe</title></head><body>text\x00with nul \xc3\x28 and <a href=\"/next\">next</a></body></html>")
		default:
			fmt.Fprint(w, "<title>next</title>ok")
		}
	}))
	defer srv.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": srv.URL + "/", "per_host_rps": 0})
	if st := sys.WaitDone(id, time.Minute); st.Fetched != 2 {
		t.Fatalf("fetched %d, want 2", st.Fetched)
	}
	for _, s := range query[string](t, sys.DSN, `SELECT title || ' ' || body_text FROM pages WHERE target_id = $1`, id) {
		if strings.ContainsRune(s, 0) {
			t.Errorf("stored text contains NUL: %q", s)
		}
	}
	got := query[string](t, sys.DSN, `SELECT title FROM pages WHERE url = $1`, srv.URL+"/")
	if len(got) != 1 || !strings.HasPrefix(got[0], "Bad") {
		t.Fatalf("title = %q, want the cleaned title", got)
	}
}

// TestPoisonResultIsDeadLettered publishes garbage on the pages queue: the processor
// dead-letters it, mirrors the dead letter into Postgres, and keeps working.
func TestPoisonResultIsDeadLettered(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 20})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	_, raw := testenv.Broker(t) // a connection to publish the poison with
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.PublishWithContext(t.Context(), sys.Topo.PagesExchange(), "page", true, false,
		amqpPublishing("{definitely not json")); err != nil {
		t.Fatal(err)
	}
	// The processor mirrors the dead-letter queue into Postgres (and acks it there).
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "poison in dead letters", func() bool {
		return len(query[string](t, sys.DSN, `SELECT reason FROM dead_letters WHERE reason = 'rejected' AND original_queue = $1`,
			sys.Topo.PagesQueue())) == 1
	})
	id := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 0})
	if st := sys.WaitDone(id, time.Minute); st.Fetched != 20 {
		t.Fatalf("fetched %d after poison, want 20", st.Fetched)
	}
}

// TestBadConfigAndOldSchema: invalid configuration fails at start with one line naming the
// variable, and a worker refuses an unmigrated database.
func TestBadConfigAndOldSchema(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ bin, env, want string }{
		{"crawler", "TRAWL_CRAWLER_CONCURRENCY=lots", "TRAWL_CRAWLER_CONCURRENCY"},
		{"crawler", "TRAWL_LOG_FORMAT=xml", "TRAWL_LOG_FORMAT"},
		{"processor", "TRAWL_PROCESSOR_BATCH_SIZE=0", "TRAWL_PROCESSOR_BATCH_SIZE"},
		{"dashboard", "TRAWL_DELIVERY_LIMIT=-1", "TRAWL_DELIVERY_LIMIT"},
		{"processor", "TRAWL_DATABASE_URL=" + testenv.Database(t), "dashboard migrate"},
	} {
		cmd := exec.Command(harness.BinDir + "/" + tt.bin)
		cmd.Env = []string{tt.env, "TRAWL_AMQP_URL=" + testenv.AMQPURL(), "TRAWL_AMQP_PREFIX=" + testenv.Name("cfg") + "."}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s with %s: err=%v output=%q, want failure mentioning %s", tt.bin, tt.env, err, out, tt.want)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; tt.bin != "processor" && lines != 1 {
			t.Errorf("%s with %s printed %d lines, want one clear line: %q", tt.bin, tt.env, lines, out)
		}
	}
}

func amqpPublishing(body string) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: "poison", Body: []byte(body)}
}
