package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trawlhq/trawl/crawlurl"
	"github.com/trawlhq/trawl/deadletter"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/target"
)

var (
	prevLink  = regexp.MustCompile(`<a rel="prev" href="([^"]+)"`)
	totalSpan = regexp.MustCompile(`<span class="total">([^<]+)</span>`)
	targetRow = regexp.MustCompile(`<tr id="target-(\d+)"`)
)

// listPage is one page of a list as a person sees it: its rows, the links to its neighbours
// and the total.
type listPage struct {
	rows       []string
	prev, next string
	total      string
}

func readList(t *testing.T, c *client, path string, rows func(body string) []string) listPage {
	t.Helper()
	resp, body := c.get(path)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", path, resp.StatusCode)
	}
	p := listPage{rows: rows(body)}
	if m := prevLink.FindStringSubmatch(body); m != nil {
		p.prev = html.UnescapeString(m[1])
	}
	if m := nextLink.FindStringSubmatch(body); m != nil {
		p.next = html.UnescapeString(m[1])
	}
	if m := totalSpan.FindStringSubmatch(body); m != nil {
		p.total = m[1]
	}
	return p
}

// clickThrough follows "Next page" from path to the last page, then "Previous page" back to
// the first, and checks that the pages agree both ways and each says the list's total.
func clickThrough(t *testing.T, c *client, path, total string, want []string, rows func(string) []string) {
	t.Helper()
	var forward []listPage
	for p := path; p != ""; {
		lp := readList(t, c, p, rows)
		forward = append(forward, lp)
		p = lp.next
		if len(forward) > len(want)+1 {
			t.Fatal("next links never end")
		}
	}
	var all []string
	for i, lp := range forward {
		all = append(all, lp.rows...)
		if lp.total != total {
			t.Errorf("page %d says %q, want %q", i, lp.total, total)
		}
		if (i == 0) != (lp.prev == "") {
			t.Errorf("page %d: previous link %q", i, lp.prev)
		}
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Fatalf("rows over the next links (-want +got):\n%s", diff)
	}
	back := forward[len(forward)-1].prev
	for i := len(forward) - 2; i >= 0; i-- {
		lp := readList(t, c, back, rows)
		if diff := cmp.Diff(forward[i].rows, lp.rows); diff != "" {
			t.Errorf("page %d reached by the previous link (-want +got):\n%s", i, diff)
		}
		if lp.next == "" {
			t.Errorf("page %d reached backwards has no next link", i)
		}
		back = lp.prev
	}
	if back != "" {
		t.Errorf("the first page, reached backwards, links to a previous page %q", back)
	}
}

func TestTargetsListPagesBothWaysWithTotal(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	var want []string
	for i := range 53 {
		tg, err := st.CreateTarget(t.Context(), target.Spec{Name: fmt.Sprint("t", i), SeedURL: fmt.Sprintf("http://t%d.test/", i),
			Scope: "host", MaxDepth: 1, MaxPages: 10, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{i64(tg.ID)}, want...)
	}
	clickThrough(t, c, "/targets", "53 targets", want, func(body string) []string {
		var ids []string
		for _, m := range targetRow.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		return ids
	})
}

// TestTargetPagesListPagesBothWays pages a target's pages sorted by status, where every page
// has the same status: the cursors' url_id breaks the ties both ways.
func TestTargetPagesListPagesBothWays(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, sizes := seedSizedPages(t, st, 109) // 110 pages, all 200: three pages of 50
	var want []string
	for id := range sizes {
		want = append(want, i64(id))
	}
	slices.SortFunc(want, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	clickThrough(t, c, "/targets/"+i64(tg.ID)+"?sort=status", "110 pages", want, func(body string) []string {
		var ids []string
		for _, m := range pageLink.FindAllStringSubmatch(pagesTable.FindString(body), -1) {
			ids = append(ids, m[1])
		}
		return ids
	})
	// A cursor for the wrong sort is refused, not misread.
	first := readList(t, c, "/targets/"+i64(tg.ID)+"?sort=status", func(string) []string { return nil })
	bad := strings.Replace(first.next, "sort=status", "sort=url", 1)
	if resp, _ := c.get(strings.Replace(bad, "after=", "before=", 1)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a status cursor used before a URL-sorted page = %d, want 400", resp.StatusCode)
	}
}

func TestTotalText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		total store.Total
		want  string
	}{
		{store.Total{N: 0}, "0 pages"},
		{store.Total{N: 1}, "1 page"},
		{store.Total{N: 1234}, "1,234 pages"},
		{store.Total{N: 10_001, Estimated: true}, "about 10,000 pages"},
		{store.Total{N: 123_456, Estimated: true}, "about 120,000 pages"},
		{store.Total{N: 9_876_543, Estimated: true}, "about 9,900,000 pages"},
	} {
		if got := totalText(tt.total, "page", "pages"); got != tt.want {
			t.Errorf("totalText(%+v) = %q, want %q", tt.total, got, tt.want)
		}
	}
}

func TestCSVExportColumns(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, _ := seedSizedPages(t, st, 2)
	base := "/api/targets/" + i64(tg.ID) + "/export.csv"
	read := func(path string) [][]string {
		t.Helper()
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, body)
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return recs
	}
	def := read(base)
	if diff := cmp.Diff(CSVColumns[:len(CSVColumns)-1], def[0]); diff != "" || slices.Contains(def[0], "text") {
		t.Errorf("default columns (-want +got):\n%s", diff)
	}
	if len(def) != 4 {
		t.Errorf("default export has %d records, want a header and 3 pages", len(def))
	}
	some := read(base + "?columns=" + "url,%20TEXT,status,url")
	if diff := cmp.Diff([]string{"url", "text", "status"}, some[0]); diff != "" {
		t.Errorf("chosen columns (-want +got):\n%s", diff)
	}
	for _, r := range some[1:] {
		if r[1] != "x" || r[2] != "200" || !strings.HasPrefix(r[0], "http://sized.test/") {
			t.Errorf("row %v, want url, text x and status 200", r)
		}
	}
	for _, bad := range []string{"?columns=url,body,titel", "?columns=,"} {
		resp, body := c.get(base + bad)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"columns"`) {
			t.Errorf("%s = %d %s, want 400 on columns", bad, resp.StatusCode, body)
		}
		if bad == "?columns=url,body,titel" && (!strings.Contains(body, `\"body\"`) || !strings.Contains(body, `\"titel\"`)) {
			t.Errorf("%s: %s, want both unknown names", bad, body)
		}
	}
}

// TestRetriesPageEmptyAndFilter: with no dead letters the bulk actions are shown disabled, with
// some they are live; the target filter is a select of targets by name.
func TestRetriesPageEmptyAndFilter(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", func(s *Server) {
		s.DeadLetters = &deadletter.Service{Store: s.Store.(*store.Store)}
	})
	c := newClient(t, ts.URL)
	tg, err := st.CreateTarget(t.Context(), target.Spec{Name: "docs <b>", SeedURL: "http://docs.test/", Scope: "host",
		MaxDepth: 1, MaxPages: 10, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	disabled := regexp.MustCompile(`<button[^>]*id="(requeue-all|purge)"[^>]*disabled`)
	_, body := c.get("/retries")
	if n := len(disabled.FindAllString(body, -1)); n != 2 {
		t.Errorf("empty list: %d of the bulk actions disabled, want 2:\n%s", n, body)
	}
	if !strings.Contains(body, `<select id="f-target" name="target">`) ||
		!strings.Contains(body, `<option value="`+i64(tg.ID)+`">docs &lt;b&gt; (#`+i64(tg.ID)+`)</option>`) {
		t.Errorf("the target filter is not a select of the targets:\n%s", body)
	}
	_, body = c.get("/retries?target=" + i64(tg.ID))
	if !strings.Contains(body, `<option value="`+i64(tg.ID)+`" selected>`) {
		t.Errorf("the chosen target is not selected")
	}
	for i := range 3 {
		if _, _, err := st.InsertDeadLetter(t.Context(), store.DeadLetter{Fingerprint: fmt.Sprint("fp", i), Reason: "rejected"}); err != nil {
			t.Fatal(err)
		}
	}
	_, body = c.get("/retries")
	if n := len(disabled.FindAllString(body, -1)); n != 0 || !strings.Contains(body, `id="purge" href="/dead-letters/purge"`) {
		t.Errorf("with dead letters: %d bulk actions disabled, want 0", n)
	}
	if !strings.Contains(body, `<span class="total">3 dead letters</span>`) {
		t.Errorf("no total of the dead letters")
	}
	// Filtered to a target that has none, they are disabled again.
	_, body = c.get("/retries?target=" + i64(tg.ID))
	if n := len(disabled.FindAllString(body, -1)); n != 2 {
		t.Errorf("filtered to no dead letters: %d disabled, want 2", n)
	}
}

// TestDeadLetterListPagesBothWays clicks through 120 dead letters, 50 a page.
func TestDeadLetterListPagesBothWays(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", func(s *Server) {
		s.DeadLetters = &deadletter.Service{Store: s.Store.(*store.Store)}
	})
	c := newClient(t, ts.URL)
	var want []string
	for i := range 120 {
		id, _, err := st.InsertDeadLetter(t.Context(), store.DeadLetter{Fingerprint: fmt.Sprint("fp", i), Reason: "rejected"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, i64(id))
	}
	row := regexp.MustCompile(`<tr id="dl-(\d+)"`)
	clickThrough(t, c, "/retries", "120 dead letters", want, func(body string) []string {
		var ids []string
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		return ids
	})
}

type fallbackQueues struct{}

func (fallbackQueues) QueueStats(context.Context) ([]pipeline.QueueStat, error) {
	return []pipeline.QueueStat{{Name: "trawl.crawl.jobs", Role: "crawl.jobs", Ready: 5, Unacked: -1, Source: "amqp",
		Cause: "pipeline: queue stats trawl.crawl.jobs: management api at http://mq.internal:15672: connection refused"}}, nil
}

// TestOverviewExplainsUnknownUnacked: when the queue figures come over AMQP, a banner says why
// and names the setting; from the management API there is none.
func TestOverviewExplainsUnknownUnacked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		queues QueueStats
		banner bool
	}{
		{"fallback", fallbackQueues{}, true},
		{"mixed", shapeQueues{}, true}, // its second queue came over AMQP, without a cause
	} {
		ts, _ := newTestServer(t, "", func(s *Server) { s.Queues = tt.queues })
		_, body := newClient(t, ts.URL).get("/")
		has := strings.Contains(body, `id="management-banner"`)
		if has != tt.banner {
			t.Errorf("%s: banner shown %t, want %t", tt.name, has, tt.banner)
		}
		if has && !strings.Contains(body, "TRAWL_AMQP_MANAGEMENT_URL") {
			t.Errorf("%s: the banner does not name the setting", tt.name)
		}
		if tt.name == "fallback" && !strings.Contains(body, "management api at http://mq.internal:15672: connection refused") {
			t.Errorf("the banner does not say why:\n%s", body)
		}
	}
	var buf bytes.Buffer
	if err := managementBanner([]pipeline.QueueStat{{Source: "management"}}).Render(t.Context(), &buf); err != nil || buf.Len() != 0 {
		t.Errorf("banner with management figures = %q, %v; want none", buf.String(), err)
	}
}

// TestWorkersRateFromProcessedDeltas: a worker's rate is its processed count's growth between
// heartbeats, by the heartbeats' own stamps; a restart starts it over.
func TestWorkersRateFromProcessedDeltas(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWorkers(func() time.Time { return now })
	started := now.Add(-time.Hour)
	beat := func(processed int64, ts time.Time, startedAt time.Time) {
		w.Observe(message.Heartbeat{Envelope: message.Envelope{TS: ts}, WorkerID: "c1", Kind: "crawler",
			IntervalMS: 5000, Processed: processed, StartedAt: startedAt, RSSBytes: 50 << 20})
	}
	rate := func() (float64, bool) { l := w.List(); return l[0].Rate, l[0].HasRate }
	beat(100, now, started)
	if _, ok := rate(); ok {
		t.Fatal("a rate after one heartbeat")
	}
	now = now.Add(7 * time.Second)              // arrived late: the stamps count
	beat(150, now.Add(-2*time.Second), started) // sent 5 s after the first
	if r, ok := rate(); !ok || r != 10 {
		t.Errorf("rate = %v, %t; want 10/s", r, ok)
	}
	now = now.Add(5 * time.Second)
	beat(3, now, now.Add(-time.Second)) // restarted: no rate from the old count
	if r, ok := rate(); !ok || r != 10 {
		t.Errorf("after a restart rate = %v, %t; want the last one kept", r, ok)
	}
	now = now.Add(5 * time.Second)
	beat(8, now, now.Add(-6*time.Second))
	if r, ok := rate(); !ok || r != 1 {
		t.Errorf("rate after the restart = %v, %t; want 1/s", r, ok)
	}
	var buf bytes.Buffer
	if err := workersTable(w.List(), false, timeRef{now}).Render(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<td class="num rate">1.00</td>`, `<td class="num rss">50.0 MiB</td>`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("workers table lacks %s:\n%s", want, buf.String())
		}
	}
}

// TestTargetPageSeparatesFailedFromHTTPErrors: a 404 is an HTTP error stored, not a failed
// fetch, in words and numbers; the page detail counts its one attempt and calls it new.
func TestTargetPageSeparatesFailedFromHTTPErrors(t *testing.T) {
	t.Parallel()
	ts, st := newTestServer(t, "", nil)
	c := newClient(t, ts.URL)
	tg, _ := seedSizedPages(t, st, 1)
	// The seed is fetched; re-crawl it into a 404 through the store, as a processor would.
	if _, err := st.RecrawlTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	jobs, err := st.Dispatch(t.Context(), store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Minute})
	if err != nil || len(jobs) == 0 {
		t.Fatalf("dispatch = %v, %v", jobs, err)
	}
	var rs []store.Result
	for _, j := range jobs {
		rs = append(rs, store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Status: 404, ContentHash: "gone", StartedAt: time.Now()})
	}
	pol := process.Policy{RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond, Canon: crawlurl.Default}
	if _, err := st.ApplyResults(t.Context(), rs, pol); err != nil {
		t.Fatal(err)
	}
	_, body := c.get("/targets/" + i64(tg.ID))
	for _, want := range []string{
		`<strong>Failed fetches:</strong> 0 given up on, 0 waiting for a retry`,
		fmt.Sprintf(`<strong>HTTP errors:</strong> %d pages stored with an error status`, len(jobs)),
		`>Failed fetches</dt><dd id="stat-failed">0</dd>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("target page lacks %q", want)
		}
	}
	_, body = c.get("/pages/" + i64(jobs[0].URLID))
	if !strings.Contains(body, `<dd id="page-attempts">1</dd>`) {
		t.Errorf("page detail after one fetch does not say 1 attempt")
	}
	// Its history: the first fetch stored its content (new), the 404 changed it.
	if !strings.Contains(body, `>new</span>`) || !strings.Contains(body, `>changed</span>`) {
		t.Errorf("history does not say new for the first fetch and changed for the second")
	}
}
