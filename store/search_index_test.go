package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// indexAll runs the search indexer until nothing is waiting, as the processors do in the
// background.
func indexAll(t *testing.T, s *store.Store) (indexed int) {
	t.Helper()
	for {
		claimed, n, err := s.IndexPages(t.Context(), 7)
		if err != nil {
			t.Fatalf("IndexPages: %v", err)
		}
		indexed += n
		if claimed == 0 {
			return indexed
		}
	}
}

// recrawlJob re-crawls target tid and returns the job dispatched for URL urlID.
func recrawlJob(t *testing.T, s *store.Store, tid, urlID int64) store.Job {
	t.Helper()
	if _, err := s.RecrawlTarget(t.Context(), tid); err != nil {
		t.Fatal(err)
	}
	for _, d := range dispatch(t, s, limits) {
		if d.URLID == urlID {
			return d
		}
	}
	t.Fatalf("re-crawl of target %d did not dispatch URL %d", tid, urlID)
	return store.Job{}
}

func backlog(t *testing.T, s *store.Store) int64 {
	t.Helper()
	n, err := s.SearchBacklog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hits(t *testing.T, s *store.Store, q string) []int64 {
	t.Helper()
	res, err := s.Search(t.Context(), store.SearchQuery{Query: q})
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	ids := []int64{}
	for _, h := range res.Hits {
		ids = append(ids, h.URLID)
	}
	return ids
}

// TestSearchIndexLifecycle follows a page through the background search index: stored pages
// are queued and not yet searchable; the indexer makes them searchable and empties the queue;
// a re-crawl with the same content keeps the vector (nothing queued), changed content is queued
// and re-indexed so that search finds the new words and not the old ones; the overview counts
// the backlog; deleting the target removes the vectors.
func TestSearchIndexLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	r := ok(j, "http://example.test/a")
	r.Title, r.Text, r.ContentHash = "Orchard", "apples and pears", "h1"
	apply(t, s, r)

	if got := hits(t, s, "apples"); len(got) != 0 {
		t.Fatalf("search before indexing = %v, want nothing yet", got)
	}
	if n := backlog(t, s); n != 1 {
		t.Fatalf("backlog after one stored page = %d, want 1", n)
	}
	o, err := s.Overview(t.Context())
	if err != nil || o.SearchBacklog != 1 {
		t.Fatalf("Overview.SearchBacklog = %d, %v; want 1", o.SearchBacklog, err)
	}
	if n := indexAll(t, s); n != 1 {
		t.Fatalf("indexed %d pages, want 1", n)
	}
	if got := hits(t, s, "apples"); len(got) != 1 || got[0] != j.URLID {
		t.Fatalf("search after indexing = %v, want [%d]", got, j.URLID)
	}
	if got := hits(t, s, "orchard"); len(got) != 1 {
		t.Fatalf("search by title = %v, want the page", got)
	}
	if n := backlog(t, s); n != 0 {
		t.Fatalf("backlog after indexing = %d, want 0", n)
	}

	// Same content again: the page row is rewritten, the vector is kept, nothing is queued.
	recrawl := func(title, text, hash string) {
		t.Helper()
		rr := ok(recrawlJob(t, s, tg.ID, j.URLID))
		rr.Title, rr.Text, rr.ContentHash = title, text, hash
		apply(t, s, rr)
	}
	recrawl("Orchard", "apples and pears", "h1")
	if n := backlog(t, s); n != 0 {
		t.Fatalf("backlog after an unchanged re-crawl = %d, want 0", n)
	}
	recrawl("Orchard", "plums and cherries", "h2")
	if n := backlog(t, s); n != 1 {
		t.Fatalf("backlog after a changed re-crawl = %d, want 1", n)
	}
	indexAll(t, s)
	if got := hits(t, s, "plums"); len(got) != 1 {
		t.Fatalf("search for the new words = %v, want the page", got)
	}
	if got := hits(t, s, "apples"); len(got) != 0 {
		t.Fatalf("search for the old words = %v, want nothing", got)
	}

	deleteTarget(t, s, tg.ID, 1)
	if got := hits(t, s, "plums"); len(got) != 0 {
		t.Fatalf("search after deleting the target = %v, want nothing", got)
	}
}

// TestIndexPagesHostileText checks that a page whose full vector exceeds Postgres's 1 MiB
// tsvector limit is stored, and indexed on a prefix instead of failing the indexer's batch, so
// the pages around it are indexed too.
func TestIndexPagesHostileText(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	newTarget(t, s, "http://example.test/", nil)
	root := dispatch(t, s, limits)[0]
	apply(t, s, ok(root, "http://example.test/a", "http://example.test/b"))
	jobs := dispatch(t, s, limits)
	if len(jobs) != 2 {
		t.Fatalf("dispatched %d, want 2", len(jobs))
	}
	var b strings.Builder
	for i := range 100000 { // 100,000 distinct words: a vector far over 1 MiB
		b.WriteRune(rune(0x4e00 + i%400))
		b.WriteRune(rune(0x4e00 + (i/400)%400))
		b.WriteRune(rune(0x4e00 + i/160000))
		b.WriteString("x ")
	}
	bomb := ok(jobs[0])
	bomb.Title, bomb.Text = "bomb", "uniquestart "+b.String()
	fine := ok(jobs[1])
	fine.Text = "ordinary neighbour"
	apply(t, s, bomb, fine)
	if n := indexAll(t, s); n != 3 {
		t.Fatalf("indexed %d pages, want 3", n)
	}
	if got := hits(t, s, "neighbour"); len(got) != 1 || got[0] != fine.URLID {
		t.Fatalf("search for the neighbour = %v, want [%d]", got, fine.URLID)
	}
	if got := hits(t, s, "uniquestart"); len(got) != 1 || got[0] != bomb.URLID {
		t.Fatalf("search for the hostile page's first word = %v, want [%d]", got, bomb.URLID)
	}
}

// TestIndexPagesConcurrent runs two indexers against one backlog: SKIP LOCKED splits the work,
// every page is indexed once, and neither waits for the other.
func TestIndexPagesConcurrent(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	_, ids := site(t, s, "example.test", 40)
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	// site indexed its pages; queue them all again, as a changed re-crawl of each would.
	if _, err := c.Exec(t.Context(), `INSERT INTO search_queue (url_id) SELECT url_id FROM pages ORDER BY url_id`); err != nil {
		t.Fatal(err)
	}
	// Another indexer's transaction holds the oldest entries.
	tx, err := c.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var held int
	if err := tx.QueryRow(t.Context(), `WITH h AS (SELECT id FROM search_queue ORDER BY id LIMIT 10 FOR UPDATE) SELECT count(*) FROM h`).Scan(&held); err != nil || held != 10 {
		t.Fatalf("hold entries: %d, %v", held, err)
	}
	done := make(chan int, 1)
	go func() {
		n := 0
		for {
			claimed, k, err := s.IndexPages(t.Context(), 8)
			if err != nil || claimed == 0 {
				break
			}
			n += k
		}
		done <- n
	}()
	select {
	case n := <-done:
		if want := len(ids) - 10; n != want {
			t.Errorf("indexed %d pages around the held entries, want %d", n, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("IndexPages waited for entries another indexer holds")
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	indexAll(t, s)
	var vectors int
	if err := c.QueryRow(t.Context(), `SELECT count(*) FROM page_search`).Scan(&vectors); err != nil || vectors != len(ids) {
		t.Fatalf("page_search rows = %d, %v; want %d", vectors, err, len(ids))
	}
}

// TestUnchangedRefetchKeepsContent checks that fetching the same body again (same hash, status,
// final URL and content type) rewrites neither the page's content nor its edges, while the fetch
// time and validators are updated and the history records an unchanged fetch; and that the
// same body at another final URL (its links resolve differently) is stored again.
func TestUnchangedRefetchKeepsContent(t *testing.T) {
	t.Parallel()
	s, _ := testenv.Store(t)
	tg := newTarget(t, s, "http://example.test/", nil)
	j := dispatch(t, s, limits)[0]
	r := ok(j, "http://example.test/a")
	r.Title, r.Text, r.ContentHash, r.ContentType, r.ETag = "Original", "original words", "h1", "text/html", `"e1"`
	apply(t, s, r)
	indexAll(t, s)

	refetch := func(mut func(*store.Result)) store.PageDetail {
		t.Helper()
		jj := recrawlJob(t, s, tg.ID, j.URLID)
		// The same body: the crawler would extract the same title, text and links; these differ
		// only so that a rewrite would show.
		rr := ok(jj)
		rr.Title, rr.Text, rr.ContentHash, rr.ContentType, rr.ETag = "Rewritten", "rewritten words", "h1", "text/html", `"e2"`
		rr.StartedAt = time.Now().Add(time.Minute)
		mut(&rr)
		apply(t, s, rr)
		d, err := s.PageDetail(t.Context(), j.URLID)
		if err != nil || d.Page == nil {
			t.Fatalf("PageDetail = %+v, %v", d, err)
		}
		return d
	}
	d := refetch(func(*store.Result) {})
	if d.Page.Title != "Original" || d.Page.ETag != `"e2"` || len(d.Outlinks) != 1 {
		t.Fatalf("after an unchanged re-fetch: title %q, etag %s, %d out-links; want the stored content, the new etag, 1 edge",
			d.Page.Title, d.Page.ETag, len(d.Outlinks))
	}
	if len(d.History) != 2 || d.History[0].Changed {
		t.Fatalf("history = %+v, want two fetches, the newest unchanged", d.History)
	}
	if !d.Page.FetchedAt.After(r.StartedAt.Add(30 * time.Second)) {
		t.Errorf("fetched_at = %v, want the re-fetch's time", d.Page.FetchedAt)
	}
	if n := backlog(t, s); n != 0 {
		t.Errorf("search backlog after an unchanged re-fetch = %d, want 0", n)
	}

	d = refetch(func(rr *store.Result) { rr.FinalURL = "http://example.test/moved" })
	if d.Page.Title != "Rewritten" || d.Page.FinalURL != "http://example.test/moved" || len(d.Outlinks) != 0 {
		t.Fatalf("after the same body at another final URL: %+v with %d out-links; want it stored again", d.Page, len(d.Outlinks))
	}
}

// TestIndexPagesClaimsAtMostLimit pins the claim to its limit when the queue's statistics say it
// is empty (as autovacuum leaves them after the queue drained): the form `id IN (SELECT ...
// LIMIT)` was planned as a semi join that re-ran the limited subquery per row and claimed
// everything.
func TestIndexPagesClaimsAtMostLimit(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	site(t, s, "example.test", 60)                                                // indexes its pages: the queue is drained
	if _, err := c.Exec(t.Context(), `VACUUM ANALYZE search_queue`); err != nil { // analysed while empty
		t.Fatal(err)
	}
	// A backlog of 2,440 entries (each page 40 times), as after a re-crawl.
	if _, err := c.Exec(t.Context(), `INSERT INTO search_queue (url_id) SELECT url_id FROM pages, generate_series(1, 40) ORDER BY url_id`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		claimed, indexed, err := s.IndexPages(t.Context(), 10)
		if err != nil || claimed != 10 || indexed < 1 || indexed > 10 {
			t.Fatalf("IndexPages(10) = %d claimed, %d indexed, %v; want 10 claimed", claimed, indexed, err)
		}
	}
	if n := backlog(t, s); n != 61*40-30 {
		t.Fatalf("backlog = %d, want %d", n, 61*40-30)
	}
}

// TestIndexPagesPaced checks the shared pace of busy-time indexing: a paced call indexes and
// then holds every paced call (of any processor) off for rest × its duration; a call while
// another holds the pace waits without indexing; and unpaced indexing is never held.
func TestIndexPagesPaced(t *testing.T) {
	t.Parallel()
	s, dsn := testenv.Store(t)
	c := conn(t, dsn)
	site(t, s, "example.test", 30)
	if _, err := c.Exec(t.Context(), `INSERT INTO search_queue (url_id) SELECT url_id FROM pages ORDER BY url_id`); err != nil {
		t.Fatal(err)
	}
	// Make a paced call measurably long, so that its rest is too.
	if _, err := c.Exec(t.Context(), `UPDATE pages SET body_text = repeat('lorem ipsum dolor ', 20000)`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	claimed, _, wait, err := s.IndexPagesPaced(t.Context(), 5, 50)
	took := time.Since(start)
	if err != nil || claimed != 5 || wait != 0 {
		t.Fatalf("first paced call = %d claimed, wait %v, %v; want 5 claimed, no wait", claimed, wait, err)
	}
	claimed, _, wait, err = s.IndexPagesPaced(t.Context(), 5, 50)
	if err != nil || claimed != 0 || wait <= 0 || wait > time.Second+time.Millisecond {
		t.Fatalf("paced call during the rest = %d claimed, wait %v, %v; want a wait in (0, 1s]", claimed, wait, err)
	}
	var restMS float64
	if err := c.QueryRow(t.Context(), `SELECT extract(epoch FROM next_at - now()) * 1000 FROM search_index_pace`).Scan(&restMS); err != nil {
		t.Fatal(err)
	}
	if restMS < 20*float64(took.Milliseconds())/2 {
		t.Errorf("rest = %.0f ms after a call of %v with rest factor 50", restMS, took)
	}
	if claimed, _, err := s.IndexPages(t.Context(), 5); err != nil || claimed != 5 {
		t.Fatalf("unpaced IndexPages during the rest = %d, %v; want 5", claimed, err)
	}
	// Another processor holds the pace.
	if _, err := c.Exec(t.Context(), `UPDATE search_index_pace SET next_at = '-infinity'`); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM search_index_pace FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	claimed, _, wait, err = s.IndexPagesPaced(t.Context(), 5, 3)
	if err != nil || claimed != 0 || wait <= 0 {
		t.Fatalf("paced call while another holds the pace = %d claimed, wait %v, %v; want a wait", claimed, wait, err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if claimed, _, wait, err = s.IndexPagesPaced(t.Context(), 5, 3); err != nil || claimed != 5 || wait != 0 {
		t.Fatalf("paced call once free = %d claimed, wait %v, %v; want 5", claimed, wait, err)
	}
}
