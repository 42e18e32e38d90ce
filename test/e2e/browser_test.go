package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/test/testenv"
	"github.com/trawlhq/trawl/test/testsite"
	"github.com/trawlhq/trawl/web"
)

var targetPath = regexp.MustCompile(`/targets/(\d+)$`)

// addTargetViaForm fills the "Add target" form and submits it; it returns the new target's
// page URL.
func addTargetViaForm(t *testing.T, b *Browser, sys *System, seed, rps string) string {
	t.Helper()
	b.Run("open targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#add-target")))
	b.Run("fill form",
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), seed),
		chromedp.SetValue(chromedp.CSS("#f-per_host_rps"), rps),
		chromedp.SetValue(chromedp.CSS("#f-max_pages"), "1000"),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
	)
	var loc string
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, "redirect to the new target", func() bool {
		loc = b.Location()
		return targetPath.MatchString(loc)
	})
	b.Run("target page", chromedp.WaitVisible(chromedp.CSS("#target-stats")))
	return loc
}

// TestBrowserAddCrawlSearchRecrawl drives the main user journey through headless Chromium:
// a bad URL is rejected inline (keeping what was typed), a good one is crawled to done, a
// word of one page is found by search, and that page is re-crawled over RPC.
func TestBrowserAddCrawlSearchRecrawl(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 30})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(2, 1)
	b := NewBrowser(t)
	b.SetTimezone("Asia/Kolkata") // for checkTimes

	b.Run("open targets", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#add-target")))
	// A marker on the window survives only if htmx swaps the form in place (no reload).
	if !evalJS[bool](b, `typeof htmx === "object" && (window.trawlMarker = 1) === 1`) {
		t.Fatal("htmx is not loaded")
	}
	b.Run("submit a bad URL",
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), "ftp://example.com/files"),
		chromedp.SetValue(chromedp.CSS("#f-max_depth"), "7"),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#seed_url-error")),
	)
	if msg := b.Text("#seed_url-error"); !strings.Contains(msg, "http") {
		t.Errorf("inline error = %q, want it to ask for an http(s) URL", msg)
	}
	seedVal, depthVal := b.Value("#f-seed_url"), b.Value("#f-max_depth")
	if seedVal != "ftp://example.com/files" || depthVal != "7" {
		t.Errorf("form lost the input: seed %q depth %q", seedVal, depthVal)
	}
	if !strings.HasSuffix(b.Location(), "/targets") || !evalJS[bool](b, `window.trawlMarker === 1`) {
		t.Errorf("a bad URL reloaded the page or navigated away (to %s) instead of showing the error in place", b.Location())
	}
	// A bad include regex is shown next to its field, in place, and the crawl options typed
	// (include, exclude, sitemaps off) are kept.
	b.Run("submit a bad include regex",
		chromedp.SetValue(chromedp.CSS("#f-seed_url"), site.SeedURL()),
		chromedp.SetValue(chromedp.CSS("#f-include"), "page/(["),
		chromedp.SetValue(chromedp.CSS("#f-exclude"), `\.pdf$`),
		chromedp.Click(chromedp.CSS("#f-sitemaps")),
		chromedp.Click(chromedp.CSS("#add-target button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#include-error")),
	)
	if msg := b.Text("#include-error"); !strings.Contains(msg, "regular expression") {
		t.Errorf("inline include error = %q, want it to name the bad regular expression", msg)
	}
	if inc, exc := b.Value("#f-include"), b.Value("#f-exclude"); inc != "page/([" || exc != `\.pdf$` {
		t.Errorf("form lost the filters: include %q exclude %q", inc, exc)
	}
	if evalJS[bool](b, `document.getElementById("f-sitemaps").checked`) {
		t.Errorf("the form turned sitemaps back on after a failed submit")
	}
	if !evalJS[bool](b, `window.trawlMarker === 1`) {
		t.Errorf("a bad regex reloaded the page instead of showing the error in place")
	}
	var n []int64
	if n = query[int64](t, sys.DSN, `SELECT count(*) FROM targets`); n[0] != 0 {
		t.Fatalf("bad input stored %d targets", n[0])
	}

	loc := addTargetViaForm(t, b, sys, site.SeedURL(), "0")
	b.WaitText(3*time.Minute, loc, "h1 .badge", "done")
	want := len(site.ExpectedURLs())
	if got := b.Text("#stat-fetched"); got != strconv.Itoa(want) {
		t.Errorf("fetched = %s, want %d", got, want)
	}
	checkExports(t, sys, targetPath.FindStringSubmatch(loc)[1], site.ExpectedURLs())

	// Search a word that only page 7 has, from the search box, reached with the "/" key.
	word := testsite.UniqWord(7)
	b.Run("press /", chromedp.KeyEvent("/"), chromedp.WaitVisible(chromedp.CSS("#q")))
	if !strings.HasSuffix(b.Location(), "/search") {
		t.Errorf(`"/" led to %s, want the search page`, b.Location())
	}
	b.Run("search",
		chromedp.SetValue(chromedp.CSS("#q"), word),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("#results")),
	)
	if n := b.Count("#results > li"); n != 1 {
		t.Errorf("search for %s found %d results, want 1", word, n)
	}
	if hl := b.Text("#results mark"); !strings.EqualFold(hl, word) {
		t.Errorf("highlighted %q, want %q", hl, word)
	}
	checkTimes(t, b, "search", 1)
	b.Run("open result", chromedp.Click(chromedp.CSS("#results a.title")), chromedp.WaitVisible(chromedp.CSS("#page-url")))
	if u := b.Text("#page-url"); u != site.PageURL(7) {
		t.Fatalf("opened %q, want %q", u, site.PageURL(7))
	}
	checkTimes(t, b, "page detail", 2) // fetched, and the history's fetch

	hitsBefore := site.Hits()[testsite.PagePath(7)]
	b.Run("re-crawl", chromedp.Click(chromedp.CSS("#recrawl-button")), chromedp.WaitVisible(chromedp.CSS("#recrawl-result")))
	res := b.Text("#recrawl-result")
	if !strings.Contains(res, "Re-crawled by crawler-") || !strings.Contains(res, "unchanged") {
		t.Errorf("re-crawl result = %q, want a crawler's reply saying unchanged", res)
	}
	if got := site.Hits()[testsite.PagePath(7)]; got != hitsBefore+1 {
		t.Errorf("page fetched %d more times by the re-crawl, want 1", got-hitsBefore)
	}
	if d := b.Dialogs(); len(d) > 0 {
		t.Errorf("unexpected dialogs: %v", d)
	}
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("the dashboard's own pages violate its CSP: %v", v)
	}
}

// checkExports downloads the target's JSONL and CSV exports and compares their URLs.
func checkExports(t *testing.T, sys *System, id string, want []string) {
	t.Helper()
	get := func(ext string) []byte {
		resp, err := http.Get(sys.Addr + "/api/targets/" + id + "/export." + ext)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("export.%s = %d %v", ext, resp.StatusCode, err)
		}
		return body
	}
	var got []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(get("jsonl"))), "\n") {
		var row struct {
			URL    string `json:"url"`
			Status int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("export.jsonl line %q: %v", line, err)
		}
		got = append(got, row.URL)
	}
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("export.jsonl URLs (-want +got):\n%s", diff)
	}
	recs, err := csv.NewReader(bytes.NewReader(get("csv"))).ReadAll()
	if err != nil {
		t.Fatalf("export.csv: %v", err)
	}
	if len(recs) != len(want)+1 || recs[0][1] != "url" {
		t.Errorf("export.csv has %d records (header %v), want %d pages and a header", len(recs), recs[0], len(want))
	}
}

// TestBrowserPauseResume pauses a slow crawl from its page and resumes it.
func TestBrowserPauseResume(t *testing.T) {
	t.Parallel()
	site := testsite.New(testsite.Options{Pages: 40})
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	b := NewBrowser(t)

	loc := addTargetViaForm(t, b, sys, site.SeedURL(), "4")
	id, _ := strconv.ParseInt(targetPath.FindStringSubmatch(loc)[1], 10, 64)
	b.Run("pause", chromedp.Click(chromedp.CSS(`button[value="pause"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if s := b.Text("h1 .badge"); s != "paused" {
		t.Fatalf("state after pause = %q", s)
	}
	var st TargetStatus
	sys.API(http.MethodGet, fmt.Sprintf("/api/targets/%d", id), nil, &st)
	if st.State != "paused" || st.Pending == 0 {
		t.Fatalf("API after pause: %+v, want paused with URLs pending", st)
	}
	// Once in-flight fetches are applied, a paused target's fetched count stays put while
	// its URLs wait (the store tests prove Dispatch skips it; here the UI shows it).
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "in-flight fetches to finish", func() bool {
		return query[int64](t, sys.DSN, `SELECT count(*) FROM urls WHERE target_id = $1 AND state = 'dispatched'`, id)[0] == 0
	})
	b.Run("resume", chromedp.Navigate(loc), chromedp.Click(chromedp.CSS(`button[value="resume"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if s := b.Text("h1 .badge"); s != "running" && s != "done" {
		t.Fatalf("state after resume = %q", s)
	}
	b.WaitText(3*time.Minute, loc, "h1 .badge", "done")
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("the dashboard's own pages violate its CSP: %v", v)
	}
}

// TestBrowserWorkers sees both crawlers and both processors on the workers page, exactly one
// processor marked as the scheduler, a stopped crawler disappear, and the scheduler mark move to
// the remaining processor when the first one stops, all without a reload or a polling request:
// the page updates over its event stream. Start and last-seen times are relative, with the
// local time on hover.
func TestBrowserWorkers(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	workers := sys.StartAll(2, 2)
	b := NewBrowser(t)
	b.SetTimezone("Asia/Kolkata")
	b.Run("open workers", chromedp.Navigate(sys.Addr+"/workers"), chromedp.WaitVisible(chromedp.CSS("#workers")))
	b.markPage()
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "two crawlers and two processors, one of them the scheduler", func() bool {
		return b.Count("tr.kind-crawler") == 2 && b.Count("tr.kind-processor") == 2 &&
			b.Count("tr.kind-processor .scheduler") == 1
	})
	sys.Stop(workers[0], 20*time.Second)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the stopped crawler to disappear", func() bool {
		return b.Count("tr.kind-crawler") == 1
	})
	sys.Stop(workers[2], 20*time.Second) // the first processor, the leader unless it lost a race
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the remaining processor to run the scheduler", func() bool {
		return b.Count("tr.kind-processor") == 1 && b.Count("tr.kind-processor .scheduler") == 1
	})
	if b.reloaded() {
		t.Error("the workers page reloaded instead of updating itself")
	}
	if polls := b.Requests("/workers/"); len(polls) > 0 {
		t.Errorf("the workers page polled: %v", polls)
	}
	if streams := b.Requests("/events/workers"); len(streams) == 0 {
		t.Errorf("the workers page never opened its event stream; requests: %v", b.Requests("/"))
	}
	checkTimes(t, b, "workers", 2*2)
}

// publishPoison publishes a message the processors cannot decode to sys's pages exchange:
// they dead-letter it, and the dashboard lists it on the retries page.
func publishPoison(t *testing.T, sys *System) {
	t.Helper()
	_, raw := testenv.Broker(t)
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.PublishWithContext(t.Context(), sys.Topo.PagesExchange(), pipeline.KeyPage, false, false,
		amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: []byte(`{"type":"nonsense"}`)}); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserRequeueDeadLetter: a poison message is dead-lettered by the processor, mirrored
// into the dashboard, and requeued to its original queue with the row's button and with
// "Requeue all"; each time it comes back it shows how often it was requeued.
func TestBrowserRequeueDeadLetter(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	sys.StartAll(0, 1)
	publishPoison(t, sys)
	b := NewBrowser(t)
	b.WaitText(60*time.Second, sys.Addr+"/retries", "#dead-letters", sys.Topo.PagesQueue())
	b.Run("requeue", chromedp.Click(chromedp.CSS("#dead-letters button.requeue")), chromedp.WaitVisible(chromedp.CSS("#dead-letters .requeued")))
	// Requeued to its original queue, the poison message is rejected and dead-lettered again:
	// it comes back to the list after a reload, showing that it was requeued once.
	b.WaitText(60*time.Second, sys.Addr+"/retries", "#dead-letters td.requeues", "1")
	// Requeue all takes the letters there are when it starts: the poison goes back once, and
	// returns again with a count of 2.
	b.Run("requeue all", chromedp.Click(chromedp.CSS("#requeue-all")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if s := b.Text("#flash"); !strings.Contains(s, "Requeued 1 dead letters") {
		t.Errorf("flash after requeue all = %q", s)
	}
	b.WaitText(60*time.Second, sys.Addr+"/retries", "#dead-letters td.requeues", "2")
	if n := b.Count("#dead-letters tbody tr"); n != 1 {
		t.Errorf("%d dead letters listed after requeue all, want the one poison message", n)
	}
	// Purge asks on a confirmation page (a plain link, no JavaScript dialog), then purges.
	b.Run("purge", chromedp.Click(chromedp.CSS("#purge")), chromedp.WaitVisible(chromedp.CSS("#confirm-purge")))
	if s := b.Text("#purge-summary"); !regexp.MustCompile(`deletes [1-9]\d* dead letters? matching`).MatchString(s) {
		t.Errorf("purge confirmation says %q, want it to count the dead letters", s)
	}
	b.Run("confirm purge", chromedp.Click(chromedp.CSS("#confirm-purge")), chromedp.WaitVisible(chromedp.CSS("#no-dead")))
	if s := b.Text("#flash"); !regexp.MustCompile(`Purged [1-9]`).MatchString(s) {
		t.Errorf("flash after purge = %q", s)
	}
	if d := b.Dialogs(); len(d) > 0 {
		t.Errorf("purge opened JavaScript dialogs: %v", d)
	}
}

// TestOverviewQueueDepthsMatchBroker publishes jobs nobody consumes and checks that the
// overview shows exactly the depths the broker reports.
func TestOverviewQueueDepthsMatchBroker(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	sys.StartAll(0, 0)
	_, raw := testenv.Broker(t)
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	const jobs = 17
	for i := range jobs {
		if err := ch.PublishWithContext(t.Context(), sys.Topo.CrawlExchange(), pipeline.KeyJob, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the jobs to be enqueued", func() bool {
		return testenv.QueueDepth(t, raw, sys.Topo.CrawlQueue()) == jobs
	})
	brokerDepth := testenv.QueueDepth(t, raw, sys.Topo.CrawlQueue())
	b := NewBrowser(t)
	b.Run("overview", chromedp.Navigate(sys.Addr+"/"))
	sel := `tr[data-queue="` + sys.Topo.CrawlQueue() + `"] td[data-field="ready"]`
	// The page updates itself over SSE; the management API refreshes its figures every few
	// seconds, so wait for them to settle at the broker's count.
	b.WaitText(60*time.Second, "", sel, strconv.Itoa(brokerDepth))
	if got := b.Text(sel); got != strconv.Itoa(brokerDepth) {
		t.Errorf("overview shows %s ready, broker reports %d", got, brokerDepth)
	}
	// Three more jobs show up without a reload: the page is updated over SSE.
	evalJS[int](b, `window.trawlMarker = 1`)
	for i := range 3 {
		if err := ch.PublishWithContext(t.Context(), sys.Topo.CrawlExchange(), pipeline.KeyJob, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, `{"m":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "the extra jobs to be enqueued", func() bool {
		return testenv.QueueDepth(t, raw, sys.Topo.CrawlQueue()) == jobs+3
	})
	brokerDepth = testenv.QueueDepth(t, raw, sys.Topo.CrawlQueue())
	b.WaitText(60*time.Second, "", sel, strconv.Itoa(brokerDepth))
	if !evalJS[bool](b, `window.trawlMarker === 1`) {
		t.Error("the overview reloaded instead of updating over SSE")
	}
	dl := `tr[data-queue="` + sys.Topo.DeadLetterQueue() + `"] td[data-field="ready"]`
	if got := b.Text(dl); got != strconv.Itoa(testenv.QueueDepth(t, raw, sys.Topo.DeadLetterQueue())) {
		t.Errorf("overview shows %s dead letters ready, broker disagrees", got)
	}
	var api struct {
		Queues []web.QueueJSON `json:"queues"`
	}
	sys.API(http.MethodGet, "/api/queues", nil, &api)
	found := false
	for _, q := range api.Queues {
		if q.Name == sys.Topo.CrawlQueue() {
			found = true
			if q.Ready != int64(brokerDepth) || q.Consumers != 0 {
				t.Errorf("/api/queues crawl queue = %+v, want %d ready and no consumers", q, brokerDepth)
			}
		}
	}
	if !found {
		t.Errorf("/api/queues has no %s: %+v", sys.Topo.CrawlQueue(), api.Queues)
	}
}

// hostileSite serves pages whose titles, text and links try to run script in the dashboard.
func hostileSite() *httptest.Server {
	mux := http.NewServeMux()
	page := func(title, body string) string {
		return "<!DOCTYPE html><html><head><title>" + title + "</title></head><body>" + body + "</body></html>"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, page("&lt;script&gt;alert(1)&lt;/script&gt;",
				`<p>xsstestword &lt;img src=x onerror=alert(2)&gt; &lt;script&gt;alert(3)&lt;/script&gt;</p>
				<a href="javascript:alert(4)">js link</a>
				<a href="JaVaScRiPt:alert(5)">js link 2</a>
				<a href="/b?q=%22%3E%3Cscript%3Ealert(6)%3C/script%3E">quote link</a>
				<a href="/c">plain</a>`))
		case "/b":
			fmt.Fprint(w, page(`"&gt;&lt;svg onload=alert(7)&gt;`, `<p>xsstestword second</p><a href="/">home</a>`))
		case "/c":
			fmt.Fprint(w, page(`&lt;/title&gt;&lt;script&gt;alert(8)&lt;/script&gt;`, `<p>xsstestword third</p>`))
		default:
			http.NotFound(w, r)
		}
	})
	return httptest.NewServer(mux)
}

// TestBrowserHostileContentNeverRuns crawls pages titled <script>alert(1)</script> with
// javascript: links, then opens every page that shows them: no dialog opens, no script or
// event-handler element is injected, no javascript: link is clickable, and the titles show as
// text.
func TestBrowserHostileContentNeverRuns(t *testing.T) {
	t.Parallel()
	site := hostileSite()
	defer site.Close()
	sys := NewSystem(t)
	sys.StartAll(1, 1)
	id := createTarget(t, sys, map[string]any{"seed_url": site.URL + "/", "per_host_rps": 0})
	sys.WaitDone(id, 2*time.Minute)
	rootID := query[int64](t, sys.DSN, `SELECT id FROM urls WHERE target_id = $1 AND url = $2`, id, site.URL+"/")[0]
	// Search vectors are built in the background once the pages are stored.
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, "every page searchable", func() bool {
		return query[int64](t, sys.DSN, `SELECT count(*) FROM search_queue`)[0] == 0
	})

	b := NewBrowser(t)
	pages := []string{
		"/", fmt.Sprintf("/targets/%d", id), fmt.Sprintf("/targets/%d?sort=status", id),
		"/search?q=xsstestword", fmt.Sprintf("/pages/%d", rootID), "/retries", "/targets",
	}
	for _, id := range query[int64](t, sys.DSN, `SELECT id FROM urls WHERE target_id = $1`, id) {
		pages = append(pages, fmt.Sprintf("/pages/%d", id))
	}
	for _, p := range pages {
		b.Run("open "+p, chromedp.Navigate(sys.Addr+p), chromedp.WaitReady(chromedp.CSS("main")))
		injected := evalJS[int](b, `document.querySelectorAll('script:not([src^="/static/"]), svg[onload], img[onerror], [onclick], [onload], [onerror]').length`)
		if injected != 0 {
			t.Errorf("%s: %d injected elements", p, injected)
		}
		jsLinks := evalJS[int](b, `Array.from(document.querySelectorAll('a[href]')).filter(a => a.protocol === 'javascript:').length`)
		if jsLinks != 0 {
			t.Errorf("%s: %d javascript: links", p, jsLinks)
		}
	}
	b.Run("page detail", chromedp.Navigate(fmt.Sprintf("%s/pages/%d", sys.Addr, rootID)))
	if h := b.Text("h1"); h != "<script>alert(1)</script>" {
		t.Errorf("title shown as %q, want the literal text", h)
	}
	b.Run("search", chromedp.Navigate(sys.Addr+"/search?q=xsstestword"), chromedp.WaitVisible(chromedp.CSS("#results")))
	body := b.Text("#results")
	if !strings.Contains(body, "<script>alert(1)</script>") {
		t.Errorf("search results do not show the hostile title as text:\n%s", body)
	}
	// Let any timer-based payload fire before checking.
	time.Sleep(500 * time.Millisecond)
	if d := b.Dialogs(); len(d) > 0 {
		t.Errorf("hostile content opened dialogs: %v", d)
	}
	// Escaped content never reaches the DOM as script, so the CSP has nothing to block either.
	if v := b.CSPViolations(); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}

// TestBrowserLoginAndCSRF: with a password, pages need a login, the API a bearer token, and a
// state change without the CSRF token is refused.
func TestBrowserLoginAndCSRF(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t, "TRAWL_DASHBOARD_PASSWORD=s3cret-pass")
	sys.StartAll(0, 0)
	b := NewBrowser(t)
	b.Run("open", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#password")))
	b.Run("wrong password", chromedp.SetValue(chromedp.CSS("#password"), "nope"), chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#password-error")))
	b.Run("right password", chromedp.SetValue(chromedp.CSS("#password"), "s3cret-pass"), chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#add-target")))
	if !strings.HasSuffix(b.Location(), "/targets") {
		t.Errorf("after login at %s, want back at /targets", b.Location())
	}
	cookieVisible := evalJS[bool](b, `document.cookie.includes("trawl_session")`)
	if cookieVisible {
		t.Error("session cookie is readable from JavaScript")
	}
	// A cross-site style POST without the token: the browser sends the cookie but no token.
	status := evalJS[int](b, `fetch("/targets", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "seed_url=http://example.com/"}).then(r => r.status)`, chromedp.EvalAwaitPromise)
	if status != http.StatusForbidden {
		t.Errorf("POST without CSRF token = %d, want 403", status)
	}
	if code := sys.API(http.MethodGet, "/api/targets", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("API without token = %d, want 401", code)
	}
	// "Log out everywhere" ends the session on the server: the browser is sent to the login form
	// and stays logged out.
	b.Run("log out everywhere", chromedp.Click(chromedp.CSS(`form[action="/logout-all"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#password")))
	b.Run("still logged out", chromedp.Navigate(sys.Addr+"/targets"), chromedp.WaitVisible(chromedp.CSS("#password")))
	var csp string
	resp, err := http.Get(sys.Addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp = resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
}

// TestScreenshots writes the README's screenshots into TRAWL_SCREENSHOT_DIR when it is set
// (make screenshots): docs/screenshot-overview.png with two crawls running,
// docs/screenshot-target.png of one of them while it runs, and docs/screenshot-page.png of
// a page it stored. Each is one 1280x800 viewport, so the files stay small.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("TRAWL_SCREENSHOT_DIR")
	if dir == "" {
		t.Skip("set TRAWL_SCREENSHOT_DIR to write screenshots (make screenshots)")
	}
	site := testsite.New(testsite.Options{Pages: 3000, Traps: true})
	defer site.Close()
	sys := NewSystem(t, "TRAWL_DASHBOARD_REFRESH=1s")
	sys.StartAll(2, 1)
	docsID := createTarget(t, sys, map[string]any{"seed_url": site.SeedURL(), "name": "docs.example (testsite)", "per_host_rps": 25, "max_pages": 3000})
	createTarget(t, sys, map[string]any{"seed_url": site.URL() + "/p/1", "name": "blog.example (testsite)", "per_host_rps": 10, "scope": "prefix", "scope_prefix": site.URL() + "/p/"})
	b := NewBrowser(t)
	b.Run("viewport", chromedp.EmulateViewport(1280, 800))
	shoot := func(name string) {
		t.Helper()
		shot, err := chromedp.Call(b.ctx, cdppage.CaptureScreenshot, cdppage.CaptureScreenshotParams{Format: cdppage.CaptureScreenshotFormatPng})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, name)
		if err := os.WriteFile(out, shot.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
	b.Run("overview", chromedp.Navigate(sys.Addr+"/"), chromedp.WaitVisible(chromedp.CSS("#active-targets")))
	// Let the chart fill for a while.
	time.Sleep(45 * time.Second)
	shoot("screenshot-overview.png")

	b.Run("target", chromedp.Navigate(fmt.Sprintf("%s/targets/%d", sys.Addr, docsID)), chromedp.WaitVisible(chromedp.CSS("#target-stats")))
	time.Sleep(5 * time.Second) // a few live updates of the figures
	if s := b.Text("#target-stats"); !strings.Contains(s, "running") {
		t.Fatalf("target is not running in its screenshot: %q", s)
	}
	shoot("screenshot-target.png")

	seed := query[int64](t, sys.DSN, `SELECT u.id FROM urls u JOIN pages p ON p.url_id = u.id WHERE u.target_id = $1 AND u.url = $2`, docsID, site.SeedURL())
	if len(seed) == 0 {
		t.Fatal("the seed page is not stored")
	}
	b.Run("page", chromedp.Navigate(fmt.Sprintf("%s/pages/%d", sys.Addr, seed[0])), chromedp.WaitVisible(chromedp.CSS("h1")))
	shoot("screenshot-page.png")
}
