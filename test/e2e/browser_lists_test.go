package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
)

// TestBrowserTargetsPagingWithTotal clicks "Next page" and "← Previous page" through 53
// targets, 50 a page, with the total on each page.
func TestBrowserTargetsPagingWithTotal(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	sys.StartAll(0, 0) // nothing crawls: the targets stay as created
	for i := range 53 {
		createTarget(t, sys, map[string]any{"seed_url": fmt.Sprintf("http://127.0.0.1:1/t%d/", i), "name": fmt.Sprint("t", i)})
	}
	b := NewBrowser(t)
	b.Run("targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#targets-pager")))
	if s := b.Text("#targets-pager .total"); s != "53 targets" {
		t.Errorf("first page total = %q, want 53 targets", s)
	}
	if n, prev := b.Count("table.targets tbody tr"), b.Count(`#targets-pager a[rel="prev"]`); n != 50 || prev != 0 {
		t.Errorf("first page: %d rows and %d previous links, want 50 and none", n, prev)
	}
	first := b.Text("table.targets tbody tr:first-child td a")
	b.Run("next", chromedp.Click(chromedp.CSS(`#targets-pager a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS(`#targets-pager a[rel="prev"]`)))
	if n, next := b.Count("table.targets tbody tr"), b.Count(`#targets-pager a[rel="next"]`); n != 3 || next != 0 {
		t.Errorf("second page: %d rows and %d next links, want 3 and none", n, next)
	}
	if s := b.Text("#targets-pager .total"); s != "53 targets" {
		t.Errorf("second page total = %q", s)
	}
	if s := b.Text("table.targets tbody tr:first-child td a"); s != "t2" {
		t.Errorf("second page starts with %q, want t2 (newest first)", s)
	}
	b.Run("previous", chromedp.Click(chromedp.CSS(`#targets-pager a[rel="prev"]`)), chromedp.WaitVisible(chromedp.CSS(`#targets-pager a[rel="next"]`)))
	if n, prev := b.Count("table.targets tbody tr"), b.Count(`#targets-pager a[rel="prev"]`); n != 50 || prev != 0 {
		t.Errorf("back on the first page: %d rows and %d previous links, want 50 and none", n, prev)
	}
	if s := b.Text("table.targets tbody tr:first-child td a"); s != first || s != "t52" {
		t.Errorf("back on the first page it starts with %q, want %q (t52)", s, first)
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}

// TestBrowserManagementAPIBanner: with the management API unreachable, the overview's queue
// table shows "?" for unacked and a banner says why and what to set.
func TestBrowserManagementAPIBanner(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t, "TRAWL_AMQP_MANAGEMENT_URL=http://guest:guest@127.0.0.1:1")
	sys.StartAll(0, 0)
	b := NewBrowser(t)
	b.Run("overview", chromedp.Navigate(sys.Addr+"/"), chromedp.WaitVisible(chromedp.CSS("#management-banner")))
	banner := b.Text("#management-banner")
	for _, want := range []string{"Unacked counts are unknown", "TRAWL_AMQP_MANAGEMENT_URL", "http://user:pass@host:15672", "127.0.0.1:1"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner %q does not say %q", banner, want)
		}
	}
	if strings.Contains(banner, "guest") {
		t.Errorf("banner shows the credentials: %q", banner)
	}
	sel := `tr[data-queue="` + sys.Topo.CrawlQueue() + `"] td[data-field="unacked"]`
	if s := b.Text(sel); s != "?" {
		t.Errorf("unacked = %q, want ?", s)
	}
}

// TestBrowserRetriesEmptyAndTargetFilter: on an empty dead-letter list "Requeue all" and
// "Purge matching…" are disabled, and the target filter is a select that filters by target.
func TestBrowserRetriesEmptyAndTargetFilter(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	sys.StartAll(0, 0)
	id := createTarget(t, sys, map[string]any{"seed_url": "http://127.0.0.1:1/", "name": "docs"})
	b := NewBrowser(t)
	b.Run("retries", chromedp.Navigate(sys.Addr+"/retries"), chromedp.WaitVisible(chromedp.CSS("#no-dead")))
	if !evalJS[bool](b, `document.getElementById("requeue-all").disabled && document.getElementById("purge").disabled`) {
		t.Error("requeue all or purge is enabled on an empty list")
	}
	b.Run("click purge", chromedp.Click(chromedp.CSS("#purge")))
	if loc := b.Location(); !strings.HasSuffix(loc, "/retries") {
		t.Errorf("clicking the disabled purge led to %s", loc)
	}
	b.Run("filter by target",
		chromedp.SetValue(chromedp.CSS("#f-target"), strconv.FormatInt(id, 10)),
		chromedp.Click(chromedp.CSS(`#filter button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#no-dead")),
	)
	if loc := b.Location(); !strings.Contains(loc, "target="+strconv.FormatInt(id, 10)) {
		t.Errorf("filtered to %s, want target=%d", loc, id)
	}
	if s := evalJS[string](b, `document.querySelector("#f-target option:checked").textContent`); s != fmt.Sprintf("docs (#%d)", id) {
		t.Errorf("selected target = %q", s)
	}
}

// TestBrowserWorkersFigures: while a crawl runs, the workers page shows each worker's rate and
// memory, and /api/workers has them without the heartbeat's envelope.
func TestBrowserWorkersFigures(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 400})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "per_host_rps": 40, "max_pages": 1000})
	b := NewBrowser(t)
	b.Run("workers", chromedp.Navigate(sys.Addr+"/workers"))
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, "the crawler's rate above zero and its memory", func() bool {
		if b.Count("tr.kind-crawler") != 1 {
			return false
		}
		r, err := strconv.ParseFloat(b.Text("tr.kind-crawler td.rate"), 64)
		return err == nil && r > 0 && strings.HasSuffix(b.Text("tr.kind-crawler td.rss"), "MiB")
	})
	if s := b.Text("tr.kind-processor td.rss"); !strings.HasSuffix(s, "MiB") {
		t.Errorf("processor memory = %q, want MiB", s)
	}
	var api struct {
		Workers []map[string]any `json:"workers"`
	}
	sys.API(http.MethodGet, "/api/workers", nil, &api)
	if len(api.Workers) != 2 {
		t.Fatalf("/api/workers lists %d workers, want 2", len(api.Workers))
	}
	for _, w := range api.Workers {
		for _, leaked := range []string{"type", "v", "id"} {
			if _, ok := w[leaked]; ok {
				t.Errorf("/api/workers has the envelope's %q: %v", leaked, w)
			}
		}
		if rss, _ := w["rss_bytes"].(float64); rss < 1<<20 {
			t.Errorf("worker %v: rss_bytes %v, want its memory", w["worker_id"], w["rss_bytes"])
		}
		if _, ok := w["pages_per_sec"].(float64); !ok {
			t.Errorf("worker %v: no pages_per_sec", w["worker_id"])
		}
	}
}
