package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/internal/testenv"
	"github.com/trawlhq/trawl/store"
)

// site crawls a target whose seed links to n pages; page i gets status statuses[i%len],
// size 100+i and content type text/html or, for every third page, application/pdf.
// It returns the target and every URL id by URL.
func site(t *testing.T, s *store.Store, host string, n int, statuses ...int) (store.Target, map[string]int64) {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{200}
	}
	tg := newTarget(t, s, "http://"+host+"/", func(nt *store.NewTarget) {
		nt.SeedHost = host
		nt.MaxPages = n + 1
		nt.MaxAttempts = 1
	})
	ids := map[string]int64{}
	seed := dispatch(t, s, limits)
	if len(seed) != 1 {
		t.Fatalf("seed dispatch = %d jobs", len(seed))
	}
	var links []string
	for i := range n {
		links = append(links, fmt.Sprintf("http://%s/p%03d", host, i))
	}
	r := ok(seed[0], links...)
	r.ContentHash = "seed"
	r.ContentType = "text/html"
	apply(t, s, r)
	ids[seed[0].URL] = seed[0].URLID
	crawlOut(t, s, func(j store.Job) store.Result {
		var i int
		if _, err := fmt.Sscanf(j.URL, "http://"+host+"/p%d", &i); err != nil {
			t.Fatalf("unexpected job %s", j.URL)
		}
		ids[j.URL] = j.URLID
		r := ok(j, "http://"+host+"/")
		r.Status = statuses[i%len(statuses)]
		r.Size = 100 + i
		r.ContentHash = fmt.Sprintf("h%d", i)
		r.ContentType = "text/html; charset=utf-8"
		if i%3 == 0 {
			r.ContentType = "application/PDF"
		}
		r.Text = fmt.Sprintf("page number %d about %s", i, []string{"apples", "pears", "plums"}[i%3])
		r.StartedAt = time.Now().Add(time.Duration(i) * time.Millisecond)
		return r
	})
	if got := target(t, s, tg.ID); got.Pending() != 0 {
		t.Fatalf("site %s not finished: %+v", host, got)
	}
	indexAll(t, s)
	return tg, ids
}

// crawlOut dispatches and applies until nothing is left to dispatch, with result making each
// job's result.
func crawlOut(t *testing.T, s *store.Store, result func(store.Job) store.Result) {
	t.Helper()
	for {
		jobs := dispatch(t, s, limits)
		if len(jobs) == 0 {
			return
		}
		rs := make([]store.Result, 0, len(jobs))
		for _, j := range jobs {
			rs = append(rs, result(j))
		}
		apply(t, s, rs...)
	}
}

func conn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

func count(t *testing.T, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func linkURLs(ls []store.LinkRow) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.URL)
	}
	slices.Sort(out)
	return out
}

func TestFetchHistoryLinksAndRates(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.MaxDepth = 1 })
	seed := dispatch(t, s, limits)[0]
	r := ok(seed, "http://example.test/a", "http://example.test/b#frag", "http://other.test/x")
	r.ContentHash, r.ETag, r.Size, r.DurationMS = "h1", `"v1"`, 1234, 17
	apply(t, s, r)

	jobs := dispatch(t, s, limits)
	if len(jobs) != 2 {
		t.Fatalf("dispatch = %d jobs, want 2", len(jobs))
	}
	byURL := map[string]store.Job{}
	for _, j := range jobs {
		byURL[j.URL] = j
	}
	a, b := byURL["http://example.test/a"], byURL["http://example.test/b"]
	// a is at max depth: its links make no new URLs, but the one to b and the seed are edges.
	ra := ok(a, "http://example.test/b", "http://example.test/", "http://example.test/new")
	ra.ContentHash = "ha"
	rb := ok(b)
	rb.Status = 503
	apply(t, s, ra, rb)

	seedDetail, err := s.PageDetail(t.Context(), seed.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a", "http://example.test/b"}, linkURLs(seedDetail.Outlinks)); diff != "" {
		t.Errorf("seed outlinks (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a"}, linkURLs(seedDetail.Inlinks)); diff != "" {
		t.Errorf("seed inlinks (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff([]string{"http://example.test/a", "http://example.test/b#frag", "http://other.test/x"}, seedDetail.Links); diff != "" {
		t.Errorf("seed raw links (-want +got):\n%s", diff)
	}
	if seedDetail.Page == nil || seedDetail.Page.ETag != `"v1"` || seedDetail.Page.Size != 1234 || seedDetail.Page.DurationMS != 17 {
		t.Errorf("seed page = %+v", seedDetail.Page)
	}
	bDetail, err := s.PageDetail(t.Context(), b.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff([]string{"http://example.test/", "http://example.test/a"}, linkURLs(bDetail.Inlinks)); diff != "" {
		t.Errorf("b inlinks (-want +got):\n%s", diff)
	}
	if bDetail.State != store.URLQueued || bDetail.Attempts != 1 || bDetail.ErrorClass != "http_503" {
		t.Errorf("b = state %s attempts %d class %q, want queued, 1, http_503", bDetail.State, bDetail.Attempts, bDetail.ErrorClass)
	}
	if len(bDetail.History) != 1 || bDetail.History[0].Status != 503 || bDetail.History[0].Changed || bDetail.History[0].ErrorClass != "http_503" {
		t.Errorf("b history = %+v", bDetail.History)
	}

	// The throughput chart has every fetch, and the 503 as an error.
	pts, err := s.Throughput(t.Context(), tg.ID, time.Minute, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 6 {
		t.Fatalf("throughput buckets = %d, want 6", len(pts))
	}
	var pages, errs int64
	for i, p := range pts {
		pages += p.Pages
		errs += p.Errors
		if i > 0 && p.At.Sub(pts[i-1].At) != 10*time.Second {
			t.Errorf("bucket %d at %v, previous %v: want 10s apart", i, p.At, pts[i-1].At)
		}
	}
	if pages != 3 || errs != 1 {
		t.Errorf("throughput total = %d pages %d errors, want 3 and 1", pages, errs)
	}
	if other, err := s.Throughput(t.Context(), tg.ID+1, time.Minute, 10*time.Second); err != nil || len(other) != 6 || other[5].Pages != 0 {
		t.Errorf("throughput of another target = %+v, %v; want 6 empty buckets", other, err)
	}
	if _, err := s.Throughput(t.Context(), 0, time.Minute, 0); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("throughput with zero bucket = %v, want ErrInvalidQuery", err)
	}

	sum, err := s.TargetSummary(t.Context(), tg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Retrying != 1 || sum.Dispatched != 0 || sum.Queued() != 1 || sum.URLsDone != 2 {
		t.Errorf("summary = %+v, want 1 retrying, 2 done", sum)
	}

	hosts, err := s.TargetHosts(t.Context(), tg.ID, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts.Rows) != 1 || hosts.Rows[0].Host != "example.test" || hosts.Rows[0].Fetches != 3 || hosts.Rows[0].Errors != 1 {
		t.Errorf("hosts = %+v, want example.test with 3 fetches, 1 error", hosts.Rows)
	}

	groups, err := s.TargetErrors(t.Context(), tg.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Class != "http_503" || groups[0].Count != 1 || groups[0].SampleURLID != b.URLID || groups[0].SampleStatus != 503 {
		t.Errorf("error groups = %+v", groups)
	}

	retry, err := s.Retrying(t.Context(), store.URLFilter{TargetID: tg.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(retry.Rows) != 1 || retry.Rows[0].URLID != b.URLID || retry.Rows[0].Attempts != 1 || retry.Rows[0].LastStatus != 503 {
		t.Errorf("retrying = %+v", retry.Rows)
	}
}

func TestFetchHistoryChangedAndNotModified(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	fetch := func(status int, hash, text string, links ...string) {
		t.Helper()
		jobs := dispatch(t, s, limits)
		if len(jobs) != 1 {
			t.Fatalf("dispatch = %d jobs, want 1", len(jobs))
		}
		r := ok(jobs[0], links...)
		r.Status, r.ContentHash, r.Text = status, hash, text
		if status == 304 {
			r.Title = ""
		}
		apply(t, s, r)
	}
	requeue := func() {
		t.Helper()
		if _, err := s.RecrawlTarget(t.Context(), tg.ID); err != nil {
			t.Fatal(err)
		}
	}
	fetch(200, "h1", "first words", "http://example.test/")
	requeue()
	fetch(200, "h1", "first words") // same content
	requeue()
	fetch(304, "", "")
	requeue()
	fetch(200, "h2", "second words")

	hist, err := s.FetchHistory(t.Context(), seedID(t, s, tg.ID), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range hist {
		got = append(got, fmt.Sprintf("%d %s %t", f.Status, f.ContentHash, f.Changed))
	}
	want := []string{"200 h2 true", "304  false", "200 h1 false", "200 h1 true"} // newest first
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if _, err := s.FetchHistory(t.Context(), 1<<40, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of a missing URL = %v, want ErrNotFound", err)
	}
}

func TestNotModifiedKeepsPage(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	r := ok(j)
	r.Title, r.Text, r.ContentHash, r.ETag = "Kept", "kept body", "h1", `"e1"`
	apply(t, s, r)
	if _, err := s.RecrawlTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	j = dispatch(t, s, limits)[0]
	if j.ETag != `"e1"` {
		t.Fatalf("re-crawl job ETag = %q, want the stored one", j.ETag)
	}
	apply(t, s, store.Result{URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Status: 304, DurationMS: 5, StartedAt: time.Now()})
	indexAll(t, s)
	d, err := s.PageDetail(t.Context(), j.URLID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Page == nil || d.Page.Title != "Kept" || d.Page.Status != 200 || d.Page.ContentHash != "h1" || d.Page.DurationMS != 5 {
		t.Fatalf("page after 304 = %+v, want the stored content with the new duration", d.Page)
	}
	res, err := s.Search(t.Context(), store.SearchQuery{Query: "kept"})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("search after 304 = %+v, %v; want the page", res, err)
	}
}

func seedID(t *testing.T, s *store.Store, targetID int64) int64 {
	t.Helper()
	pl, err := s.Pages(t.Context(), store.PageQuery{TargetID: targetID, Limit: 1})
	if err != nil || len(pl.Rows) == 0 {
		t.Fatalf("pages of target %d: %+v, %v", targetID, pl, err)
	}
	return pl.Rows[0].URLID
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	opts := store.TargetOptions{Sitemaps: true, IncludeRegex: "^http://example\\.test/", ExcludeRegex: "/private/"}
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.TargetOptions = opts })
	seed := dispatch(t, s, limits)[0]
	paused, err := s.PauseTarget(t.Context(), tg.ID)
	if err != nil || paused.State != store.TargetPaused {
		t.Fatalf("PauseTarget = %+v, %v", paused, err)
	}
	// Every read of a target carries its options, the action answers and summaries included.
	if paused.TargetOptions != opts {
		t.Fatalf("PauseTarget options = %+v, want %+v", paused.TargetOptions, opts)
	}
	if sum, err := s.TargetSummary(t.Context(), tg.ID); err != nil || sum.TargetOptions != opts {
		t.Fatalf("TargetSummary options = %+v, %v; want %+v", sum.TargetOptions, err, opts)
	}
	if again, err := s.PauseTarget(t.Context(), tg.ID); err != nil || again.State != store.TargetPaused {
		t.Fatalf("second PauseTarget = %+v, %v; want a no-op", again, err)
	}
	// The in-flight fetch still applies, with its links; nothing more is dispatched.
	if a := apply(t, s, ok(seed, "http://example.test/a")); a.Applied != 1 || a.Discovered != 1 {
		t.Fatalf("apply while paused = %+v", a)
	}
	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Fatalf("dispatched %d jobs of a paused target", len(jobs))
	}
	resumed, err := s.ResumeTarget(t.Context(), tg.ID)
	if err != nil || resumed.State != store.TargetActive {
		t.Fatalf("ResumeTarget = %+v, %v", resumed, err)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 {
		t.Fatalf("dispatch after resume = %d jobs, want 1", len(jobs))
	}
	// Paused while the last URL is in flight: resuming finds nothing pending and finishes.
	if _, err := s.PauseTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	apply(t, s, ok(jobs[0]))
	if got := target(t, s, tg.ID); got.State != store.TargetPaused {
		t.Fatalf("state after last result while paused = %s, want paused", got.State)
	}
	done, err := s.ResumeTarget(t.Context(), tg.ID)
	if err != nil || done.State != store.TargetDone || done.FinishedAt == nil {
		t.Fatalf("ResumeTarget with nothing pending = %+v, %v; want done", done, err)
	}
	if _, err := s.PauseTarget(t.Context(), tg.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("pausing a done target = %v, want ErrTargetState", err)
	}
	if _, err := s.ResumeTarget(t.Context(), tg.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resuming a missing target = %v, want ErrNotFound", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.MaxAttempts = 5 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://example.test/a", "http://example.test/b", "http://example.test/c"))
	lim := limits
	lim.Lease = 50 * time.Millisecond
	inflight := dispatch(t, s, lim) // a, b, c
	if len(inflight) != 3 {
		t.Fatalf("dispatch = %d, want 3", len(inflight))
	}
	// d stays queued.
	apply(t, s, ok(inflight[0], "http://example.test/d"))

	c, err := s.CancelTarget(t.Context(), tg.ID)
	if err != nil || c.State != store.TargetCancelled {
		t.Fatalf("CancelTarget = %+v, %v", c, err)
	}
	if c.URLsCancelled != 1 || c.Pending() != 2 {
		t.Fatalf("after cancel: cancelled %d pending %d, want 1 and 2 (in flight)", c.URLsCancelled, c.Pending())
	}
	// In flight: one applies (a 503 that would be retried becomes cancelled, links are not
	// followed); the other's lease expires.
	r := ok(inflight[1], "http://example.test/e")
	r.Status = 503
	if a := apply(t, s, r); a.Applied != 1 || a.Discovered != 0 {
		t.Fatalf("apply after cancel = %+v", a)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := s.ReapLeases(t.Context()); err != nil || n != 1 {
		t.Fatalf("ReapLeases = %d, %v", n, err)
	}
	got := target(t, s, tg.ID)
	if got.State != store.TargetCancelled || got.Pending() != 0 || got.URLsCancelled != 3 || got.URLsDone != 2 {
		t.Fatalf("cancelled target = %+v, want final: 2 done, 3 cancelled", got)
	}
	if jobs := dispatch(t, s, limits); len(jobs) != 0 {
		t.Fatalf("dispatched %d of a cancelled target", len(jobs))
	}
	if _, err := s.ResumeTarget(t.Context(), tg.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("resume cancelled = %v, want ErrTargetState", err)
	}
	// A re-crawl brings everything back, cancelled URLs included.
	rc, err := s.RecrawlTarget(t.Context(), tg.ID)
	if err != nil || rc.State != store.TargetActive || rc.Pending() != 5 || rc.URLsCancelled != 0 {
		t.Fatalf("RecrawlTarget = %+v, %v; want active with 5 pending", rc, err)
	}
}

func TestRequeueDueTargets(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", func(nt *store.NewTarget) { nt.RecrawlInterval = time.Hour })
	other := newTarget(t, s, "http://other.test/", func(nt *store.NewTarget) { nt.SeedHost = "other.test" })
	for _, j := range dispatch(t, s, limits) {
		apply(t, s, ok(j))
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 0 {
		t.Fatalf("RequeueDueTargets right after finishing = %d, %v; want 0", n, err)
	}
	// An hour passes.
	if _, err := conn(t, dsn).Exec(t.Context(), `UPDATE targets SET finished_at = finished_at - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 1 {
		t.Fatalf("RequeueDueTargets = %d, %v; want 1", n, err)
	}
	if got := target(t, s, tg.ID); got.State != store.TargetActive || got.Pending() != 1 {
		t.Fatalf("target after its interval = %+v, want active with the seed queued", got)
	}
	if got := target(t, s, other.ID); got.State != store.TargetDone {
		t.Fatalf("target without interval = %s, want done", got.State)
	}
	if n, err := s.RequeueDueTargets(t.Context()); err != nil || n != 0 {
		t.Fatalf("second RequeueDueTargets = %d, %v; want 0", n, err)
	}
}

// pageKey is a page's sort key for the order the test expects.
func pageLess(sortBy string, desc bool) func(a, b store.PageRow) int {
	return func(a, b store.PageRow) int {
		var c int
		switch sortBy {
		case store.SortURL:
			c = strings.Compare(a.URL, b.URL)
		case store.SortFetchedAt:
			c = a.FetchedAt.Compare(b.FetchedAt)
		case store.SortStatus:
			c = cmp.Compare(a.Status, b.Status)
		case store.SortSize:
			c = cmp.Compare(a.Size, b.Size)
		}
		if c == 0 {
			c = cmp.Compare(a.URLID, b.URLID)
		}
		if desc {
			c = -c
		}
		return c
	}
}

func TestPagesKeysetPagination(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg, _ := site(t, s, "example.test", 40, 200, 404, 200, 500, 301)
	site(t, s, "noise.test", 5) // another target's pages never show up

	all, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Rows) != 41 || all.NextCursor != "" {
		t.Fatalf("all pages = %d rows, cursor %q; want 41 and none", len(all.Rows), all.NextCursor)
	}
	type filter struct{ status, ctype string }
	for _, sortBy := range []string{store.SortURL, store.SortFetchedAt, store.SortStatus, store.SortSize} {
		for _, desc := range []bool{false, true} {
			for _, f := range []filter{{}, {status: "2xx"}, {status: "404"}, {ctype: "TEXT/html"}, {status: "5xx", ctype: "application/pdf"}} {
				t.Run(fmt.Sprintf("%s-desc=%t-%s-%s", sortBy, desc, f.status, f.ctype), func(t *testing.T) {
					var want []store.PageRow
					for _, p := range all.Rows {
						if f.status == "2xx" && (p.Status < 200 || p.Status > 299) ||
							f.status == "5xx" && p.Status < 500 ||
							f.status == "404" && p.Status != 404 ||
							f.ctype != "" && !strings.HasPrefix(strings.ToLower(p.ContentType), strings.ToLower(f.ctype)) {
							continue
						}
						want = append(want, p)
					}
					if len(want) == 0 {
						t.Fatal("filter matches nothing: the test proves nothing")
					}
					slices.SortFunc(want, pageLess(sortBy, desc))
					var got []store.PageRow
					q := store.PageQuery{TargetID: tg.ID, Sort: sortBy, Desc: desc, Status: f.status, ContentType: f.ctype, Limit: 4}
					for range 100 {
						pl, err := s.Pages(t.Context(), q)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, pl.Rows...)
						if pl.NextCursor == "" {
							break
						}
						q.After = pl.NextCursor
					}
					if diff := gocmp.Diff(want, got); diff != "" {
						t.Errorf("pages (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
	for _, bad := range []store.PageQuery{
		{TargetID: tg.ID, Sort: "title"},
		{TargetID: tg.ID, Status: "2xy"},
		{TargetID: tg.ID, Status: "99"},
		{TargetID: tg.ID, After: "!!!"},
		{TargetID: tg.ID, Sort: store.SortSize, After: all.Rows[0].URL},
		{TargetID: 0},
	} {
		if _, err := s.Pages(t.Context(), bad); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Pages(%+v) = %v, want ErrInvalidQuery", bad, err)
		}
	}
	// A cursor made for one sort does not decode for another.
	first, _ := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Sort: store.SortURL, Limit: 2})
	if _, err := s.Pages(t.Context(), store.PageQuery{TargetID: tg.ID, Sort: store.SortSize, After: first.NextCursor}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Errorf("url cursor with size sort = %v, want ErrInvalidQuery", err)
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	// 0: the default scan covers these small targets whole; 10: common words are found by the
	// scan, the others through the GIN index; 2: nearly everything goes through the GIN index.
	for _, probe := range []int{0, 10, 2} {
		t.Run(fmt.Sprintf("probe=%d", probe), func(t *testing.T) {
			t.Parallel()
			s, _ := testenv.Store(t)
			if probe > 0 {
				store.SetSearchProbe(s, probe)
			}
			testSearch(t, s)
		})
	}
}

func testSearch(t *testing.T, s *store.Store) {
	tg, ids := site(t, s, "example.test", 30)
	other, _ := site(t, s, "other.test", 3)

	// Hostile text: markup and the private-use markers must come back as plain text.
	if rc, err := s.RecrawlTarget(t.Context(), other.ID); err != nil || rc.State != store.TargetActive {
		t.Fatalf("RecrawlTarget = %+v, %v", rc, err)
	}
	crawlOut(t, s, func(j store.Job) store.Result {
		r := ok(j)
		r.Text = "<script>alert(1)</script> \uE000forged\uE001 hostile apples"
		r.Title = "<b>bold</b>"
		return r
	})
	indexAll(t, s)

	var res store.SearchResults
	var err error
	var got []int64
	q := store.SearchQuery{Query: "pears", TargetID: tg.ID, Limit: 4}
	for range 20 {
		res, err = s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			got = append(got, h.URLID)
			var hits []string
			for _, p := range h.Snippet {
				if p.Hit {
					hits = append(hits, p.Text)
				}
			}
			if diff := gocmp.Diff([]string{"pears"}, hits); diff != "" {
				t.Errorf("highlighted words of %s (-want +got):\n%s", h.URL, diff)
			}
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	var want []int64
	for i := 1; i < 30; i += 3 {
		want = append(want, ids[fmt.Sprintf("http://example.test/p%03d", i)])
	}
	slices.Sort(want)
	slices.Reverse(want) // newest first
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("hits (-want +got):\n%s", diff)
	}

	// A word on every page, paginated: every page once, newest first.
	var all []int64
	q = store.SearchQuery{Query: "number", TargetID: tg.ID, Limit: 4}
	for range 20 {
		res, err = s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			all = append(all, h.URLID)
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	var wantAll []int64
	for u, id := range ids {
		if u != "http://example.test/" {
			wantAll = append(wantAll, id)
		}
	}
	slices.Sort(wantAll)
	slices.Reverse(wantAll)
	if diff := gocmp.Diff(wantAll, all); diff != "" {
		t.Errorf("hits for a word on every page (-want +got):\n%s", diff)
	}

	// websearch syntax: a phrase and an exclusion.
	res, err = s.Search(t.Context(), store.SearchQuery{Query: `"number 4 about" -apples`})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].URL != "http://example.test/p004" {
		t.Errorf("phrase search = %+v, %v; want p004", res.Hits, err)
	}

	res, err = s.Search(t.Context(), store.SearchQuery{Query: "hostile", TargetID: other.ID})
	if err != nil || len(res.Hits) != 4 {
		t.Fatalf("hostile search = %d hits, %v; want 4", len(res.Hits), err)
	}
	for _, h := range res.Hits {
		var text strings.Builder
		for _, p := range h.Snippet {
			if p.Hit && p.Text != "hostile" {
				t.Errorf("forged highlight %q", p.Text)
			}
			text.WriteString(p.Text)
		}
		// ts_headline leaves tags out; what remains is plain text, never a marker.
		if !strings.Contains(text.String(), "forged hostile apples") || strings.ContainsAny(text.String(), "\uE000\uE001") {
			t.Errorf("snippet %q: want the words as plain text, without markers", text.String())
		}
		if h.Title != "<b>bold</b>" {
			t.Errorf("title = %q", h.Title)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 501)} {
		if _, err := s.Search(t.Context(), store.SearchQuery{Query: bad}); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("Search(%q) = %v, want ErrInvalidQuery", bad, err)
		}
	}
	// Syntax websearch_to_tsquery cannot choke on.
	if _, err := s.Search(t.Context(), store.SearchQuery{Query: `"unbalanced & | ! (`}); err != nil {
		t.Errorf("odd query: %v", err)
	}
}

func TestOverviewListsAndExport(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	a, aIDs := site(t, s, "a.test", 9, 200, 404, 500) // 500s fail at once (max attempts 1)
	b := newTarget(t, s, "http://b.test/", func(nt *store.NewTarget) { nt.SeedHost = "b.test"; nt.MaxAttempts = 3 })
	seed := dispatch(t, s, limits)[0]
	apply(t, s, ok(seed, "http://b.test/1", "http://b.test/2", "http://b.test/3"))
	js := dispatch(t, s, limits)
	r := ok(js[0])
	r.Error, r.ErrorClass = "dial tcp: connection refused", "refused"
	apply(t, s, r) // one retrying; two dispatched
	if _, err := s.PauseTarget(t.Context(), b.ID); err != nil {
		t.Fatal(err)
	}

	o, err := s.Overview(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := store.Overview{Queued: 0, Dispatched: 2, Retrying: 1, Failed: 3, Done: 7 + 1, Discovered: 10 + 4,
		SearchBacklog: 1, // b's seed page; site() indexed a's
		Targets:       map[string]int64{"done": 1, "paused": 1}}
	if diff := gocmp.Diff(want, o, gocmpIgnoreActive); diff != "" {
		t.Errorf("overview (-want +got):\n%s", diff)
	}
	if len(o.Active) != 1 || o.Active[0].ID != b.ID || o.Active[0].Dispatched != 2 || o.Active[0].Retrying != 1 {
		t.Errorf("active = %+v", o.Active)
	}

	list, err := s.TargetList(t.Context(), store.TargetQuery{Limit: 1})
	if err != nil || len(list.Rows) != 1 || list.Rows[0].ID != b.ID || list.NextCursor == "" {
		t.Fatalf("target list page 1 = %+v, %v", list, err)
	}
	list, err = s.TargetList(t.Context(), store.TargetQuery{Limit: 1, After: list.NextCursor})
	if err != nil || len(list.Rows) != 1 || list.Rows[0].ID != a.ID || list.NextCursor != "" {
		t.Fatalf("target list page 2 = %+v, %v", list, err)
	}
	if list, err := s.TargetList(t.Context(), store.TargetQuery{State: store.TargetDone}); err != nil || len(list.Rows) != 1 || list.Rows[0].ID != a.ID {
		t.Fatalf("done targets = %+v, %v", list, err)
	}
	if _, err := s.TargetList(t.Context(), store.TargetQuery{State: "running"}); !errors.Is(err, store.ErrInvalidQuery) {
		t.Fatalf("unknown state = %v, want ErrInvalidQuery", err)
	}

	failed, err := s.Failed(t.Context(), store.URLFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var failedIDs []int64
	for {
		for _, u := range failed.Rows {
			failedIDs = append(failedIDs, u.URLID)
			if u.LastStatus != 500 || u.ErrorClass != "http_500" {
				t.Errorf("failed row %+v", u)
			}
		}
		if failed.NextCursor == "" {
			break
		}
		if failed, err = s.Failed(t.Context(), store.URLFilter{Limit: 2, After: failed.NextCursor}); err != nil {
			t.Fatal(err)
		}
	}
	wantFailed := []int64{aIDs["http://a.test/p008"], aIDs["http://a.test/p005"], aIDs["http://a.test/p002"]}
	if diff := gocmp.Diff(wantFailed, failedIDs); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	if f, err := s.Failed(t.Context(), store.URLFilter{TargetID: b.ID}); err != nil || len(f.Rows) != 0 {
		t.Errorf("failed of b = %+v, %v; want none", f, err)
	}
	if f, err := s.Failed(t.Context(), store.URLFilter{Host: "A.TEST", ErrorClass: "http_500"}); err != nil || len(f.Rows) != 3 {
		t.Errorf("failed by host and class = %d rows, %v; want 3", len(f.Rows), err)
	}
	if rt, err := s.Retrying(t.Context(), store.URLFilter{ErrorClass: "refused"}); err != nil || len(rt.Rows) != 1 || rt.Rows[0].LastError == "" {
		t.Errorf("retrying by class = %+v, %v", rt, err)
	}
	groups, err := s.TargetErrors(t.Context(), a.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var classes []string
	for _, g := range groups {
		classes = append(classes, fmt.Sprintf("%s=%d", g.Class, g.Count))
	}
	if diff := gocmp.Diff([]string{"http_404=3", "http_500=3"}, classes); diff != "" {
		t.Errorf("error groups (-want +got):\n%s", diff)
	}
	if _, err := s.TargetErrors(t.Context(), 1<<40, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("errors of a missing target = %v, want ErrNotFound", err)
	}

	// Export streams every stored page of a, in url_id order, including the 4xx/5xx pages.
	var exported []string
	err = s.ExportPages(t.Context(), a.ID, func(r store.ExportRow) error {
		exported = append(exported, r.URL)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(exported) != 10 || exported[0] != "http://a.test/" {
		t.Errorf("exported %v", exported)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ExportPages(t.Context(), a.ID, func(store.ExportRow) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("export stopped by fn = %v after %d rows, want stop after 1", err, n)
	}
	if err := s.ExportPages(t.Context(), 1<<40, func(store.ExportRow) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("export of a missing target = %v, want ErrNotFound", err)
	}
	if _, err := s.PageDetail(t.Context(), 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("detail of a missing URL = %v, want ErrNotFound", err)
	}
}

var gocmpIgnoreActive = gocmp.FilterPath(func(p gocmp.Path) bool { return p.String() == "Active" }, gocmp.Ignore())

func TestRequeueFailed(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	a, aIDs := site(t, s, "a.test", 6, 200, 500) // p001, p003, p005 fail
	c, _ := site(t, s, "c.test", 2, 500)         // all fail; the target is done
	if _, err := s.CancelTarget(t.Context(), c.ID); !errors.Is(err, store.ErrTargetState) {
		t.Fatalf("cancel a done target = %v, want ErrTargetState", err)
	}

	// A cancelled target's failures stay failed: queuing them would leave it pending forever.
	x := newTarget(t, s, "http://x.test/", func(nt *store.NewTarget) { nt.SeedHost = "x.test"; nt.MaxAttempts = 1 })
	apply(t, s, ok(dispatch(t, s, limits)[0], "http://x.test/1", "http://x.test/2"))
	xj := dispatch(t, s, limits)
	bad := ok(xj[0])
	bad.Status = 500
	apply(t, s, bad)
	if _, err := s.CancelTarget(t.Context(), x.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: x.ID}); err != nil || n != 0 {
		t.Fatalf("RequeueAllFailed(cancelled target) = %d, %v; want 0", n, err)
	}
	if got := target(t, s, x.ID); got.URLsFailed != 1 || got.State != store.TargetCancelled {
		t.Fatalf("cancelled target = %+v", got)
	}

	n, err := s.RequeueFailedURLs(t.Context(), []int64{aIDs["http://a.test/p001"], aIDs["http://a.test/p000"]})
	if err != nil || n != 1 {
		t.Fatalf("RequeueFailedURLs = %d, %v; want 1 (p000 is done)", n, err)
	}
	got := target(t, s, a.ID)
	if got.State != store.TargetActive || got.Pending() != 1 || got.URLsFailed != 2 {
		t.Fatalf("target after requeue = %+v, want active with 1 pending, 2 failed", got)
	}
	jobs := dispatch(t, s, limits)
	if len(jobs) != 1 || jobs[0].URLID != aIDs["http://a.test/p001"] {
		t.Fatalf("dispatch = %+v, want p001", jobs)
	}
	apply(t, s, ok(jobs[0]))
	if got := target(t, s, a.ID); got.State != store.TargetDone || got.URLsFailed != 2 {
		t.Fatalf("target = %+v, want done again", got)
	}

	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{Host: "c.test", ErrorClass: "http_500"})
	if err != nil || n != 2 {
		t.Fatalf("RequeueAllFailed(c.test) = %d, %v; want 2", n, err)
	}
	if got := target(t, s, a.ID); got.URLsFailed != 2 || got.State != store.TargetDone {
		t.Fatalf("other target touched: %+v", got)
	}
	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: a.ID, ErrorClass: "timeout"})
	if err != nil || n != 0 {
		t.Fatalf("RequeueAllFailed(no match) = %d, %v", n, err)
	}
	n, err = s.RequeueAllFailed(t.Context(), store.URLFilter{TargetID: a.ID})
	if err != nil || n != 2 {
		t.Fatalf("RequeueAllFailed(a) = %d, %v; want 2", n, err)
	}
}

// The dashboard migration rolls back to the pipeline-core schema and forward again, keeping
// the targets' counters exact: a cancelled URL counts as failed in the old schema.
func TestDashboardMigrationDownAndUp(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	apply(t, s, ok(dispatch(t, s, limits)[0], "http://example.test/a", "http://example.test/b"))
	if _, err := s.CancelTarget(t.Context(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateDownTo(t.Context(), s, 1); err != nil {
		t.Fatalf("down to 1: %v", err)
	}
	c := conn(t, dsn)
	if got := count(t, c, `SELECT urls_failed FROM targets WHERE id = $1`, tg.ID); got != 2 {
		t.Fatalf("after down: failed = %d, want 2 (the cancelled URLs)", got)
	}
	if got := count(t, c, `SELECT count(*) FROM urls WHERE state = 'failed'`); got != 2 {
		t.Fatalf("after down: %d failed URLs, want 2", got)
	}
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := target(t, s, tg.ID); got.URLsDone != 1 || got.URLsFailed != 2 || got.URLsCancelled != 0 {
		t.Fatalf("after up: %+v", got)
	}
}

// TestSearchLeavesOutDeletingTargets: the pages of a target being deleted are still in the
// search index until their purge batch goes, but search no longer shows them, while the cursor
// still pages through what is left.
func TestSearchLeavesOutDeletingTargets(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	gone, _ := site(t, s, "gone.test", 6)
	kept, _ := site(t, s, "kept.test", 6)
	if _, err := s.DeleteTarget(t.Context(), gone.ID); err != nil {
		t.Fatal(err)
	}
	var targets []int64
	q := store.SearchQuery{Query: "page", Limit: 2}
	for range 20 {
		res, err := s.Search(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			targets = append(targets, h.TargetID)
		}
		if res.NextCursor == "" {
			break
		}
		q.After = res.NextCursor
	}
	want := []int64{kept.ID, kept.ID, kept.ID, kept.ID, kept.ID, kept.ID}
	if diff := gocmp.Diff(want, targets); diff != "" {
		t.Errorf("targets of the hits (-want +got):\n%s", diff)
	}
}
