package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trawlhq/trawl/sanitize"
)

// Result is one fetch outcome to persist.
type Result struct {
	URLID        int64
	TargetID     int64
	URL          string
	FinalURL     string
	Status       int
	ContentType  string
	Title        string
	Text         string
	Links        []string
	ETag         string
	LastModified string
	ContentHash  string
	Size         int
	Truncated    bool
	NoFollow     bool // the page asks robots not to follow its links: they become edges only
	DurationMS   int
	StartedAt    time.Time
	Error        string
	ErrorClass   string
	Permanent    bool
	RetryAfter   time.Duration
}

// URLRow is the frontier state of a URL, as locked while a batch is applied.
type URLRow struct {
	ID       int64
	TargetID int64
	URL      string
	Host     string
	Depth    int
	State    string
	Attempts int
	// ContentHash is the hash of the last stored content ("" before the first fetch).
	ContentHash string
	// Fetched is true when the URL got a response before.
	Fetched bool
	// Stored is the URL's stored page, if any: what a re-fetch with the same body must match to
	// count as unchanged.
	Stored *StoredPage
}

// StoredPage is what ApplyResults compares a new fetch with: the text, title and links of a page
// derive from its body (ContentHash), its final URL (links resolve against it) and its content
// type (the charset).
type StoredPage struct {
	Status      int
	FinalURL    string
	ContentType string
}

// unchanged reports whether r is a fresh copy of the stored page: then only its fetch time and
// validators are written, not its text, links and edges again.
func unchanged(r *Result, u *URLRow) bool {
	if u.Stored == nil || r.Error != "" || r.ContentHash == "" || r.ContentHash != u.ContentHash {
		return false
	}
	final := r.FinalURL
	if final == "" {
		final = r.URL
	}
	return r.Status == u.Stored.Status && final == u.Stored.FinalURL && r.ContentType == u.Stored.ContentType
}

// Outcome is what a Result does to its URL.
type Outcome struct {
	State         string // URLDone, URLQueued (retry) or URLFailed
	NextAttemptAt time.Time
	StorePage     bool
	// HostBackoffUntil, when set, keeps the whole host from being dispatched until then.
	HostBackoffUntil time.Time
}

// NewURL is a discovered link admitted into the frontier.
type NewURL struct {
	URL   string
	Host  string
	Depth int
}

// Policy makes the crawl decisions for ApplyResults. It is implemented by the processor; the
// store only runs SQL.
type Policy interface {
	// Decide returns what r does to its URL, which has made u.Attempts earlier attempts.
	Decide(r *Result, t *Target, u *URLRow) Outcome
	// Admit returns the links of a page at depth that belong in t's frontier (scope, depth).
	Admit(t *Target, depth int, links []string) []NewURL
}

// Applied summarises one ApplyResults call.
type Applied struct {
	Applied    int // results that changed their URL's state
	Duplicates int // results for URLs already finished, or unknown
	// Dropped counts results for a target that is being deleted or is gone: acked, not stored.
	Dropped    int
	Discovered int // new URLs inserted into the frontier
	// Retried and Failed count the results whose URL the policy queued again for a retry, or
	// gave up on. Like every count here they come from the attempt that committed, however often
	// the transaction was tried (inTx): the caller counts them in its metrics after commit.
	Retried  int
	Failed   int
	Finished []int64 // targets that became done
	// FinishedCounts are the Finished targets' counters as they finished, in the same order.
	FinishedCounts []TargetCounts
}

// TargetCounts are a target's URL counters.
type TargetCounts struct {
	ID        int64
	URLs      int64 // discovered
	Done      int64
	Failed    int64
	Cancelled int64
}

// ErrInvalidResult marks a result that no retry can store (Transient reports false): the
// processor isolates it, and it ends in the dead-letter queue.
var ErrInvalidResult = errors.New("invalid result")

// errTargetChanged means a target's settings or state changed while a batch was being applied:
// the transaction is rolled back and tried again with fresh rows (inTx).
var errTargetChanged = errors.New("a target changed during the batch")

// refresh takes the targets' counters from locked, their rows read again under the batch's
// lock (FOR NO KEY UPDATE: the foreign keys of pages, urls and links take only key-share locks,
// so inserts that reference a target never wait for a batch holding it). It fails with
// errTargetChanged if anything but the counters differs from the first read.
func refresh(targets map[int64]*Target, locked []Target) error {
	if len(locked) != len(targets) {
		return errTargetChanged // one was deleted (or created under a result's id) meanwhile
	}
	for i := range locked {
		l := &locked[i]
		t := targets[l.ID]
		if t == nil || !sameSettings(*t, *l) {
			return errTargetChanged
		}
		*t = *l
	}
	return nil
}

// sameSettings reports whether two reads of a target agree on everything but its counters and
// timestamps.
func sameSettings(a, b Target) bool {
	for _, t := range []*Target{&a, &b} {
		t.URLsTotal, t.URLsDone, t.URLsFailed, t.URLsCancelled = 0, 0, 0, 0
		t.UpdatedAt, t.FinishedAt = time.Time{}, nil
	}
	return a == b
}

// ErrURLMismatch means a result names another URL than the one its URL id was leased for: a bug
// or a forged message. Nothing of its batch is stored.
var ErrURLMismatch = fmt.Errorf("%w: its URL is not the one its URL id was leased for", ErrInvalidResult)

// ApplyResults persists a batch of fetch results in one transaction: URL states, pages,
// discovered links (deduplicated on the canonical URL, bounded by each target's max_pages), host
// pacing and finished targets. Applying the same result twice is harmless: a URL that is
// already done or failed is left alone.
//
// Locks: the batch's URLs (in id order), then its targets (in id order, only after the pages
// and fetch history are written, so that two processors' batches for one target overlap instead
// of queueing for its row: docs/adr/0044-batch-locks-its-targets-late.md), then hosts (in name
// order). Processors therefore never deadlock each other. Other writers lock a target before its URLs (cancel,
// re-crawl, robots.txt); they touch queued, failed or finished URLs, which a batch holds only
// for a late duplicate result, and in that rare crossing Postgres breaks the deadlock and the
// transaction is retried (inTx).
func (s *Store) ApplyResults(ctx context.Context, results []Result, pol Policy) (Applied, error) {
	var out Applied
	var learned []knownURL
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, learned, err = applyResults(ctx, tx, results, pol, s.known)
		return err
	})
	if err != nil {
		return Applied{}, fmt.Errorf("store: apply %d results: %w", len(results), err)
	}
	s.known.add(learned) // committed: the ids are real
	return out, nil
}

// applyResults runs one attempt of ApplyResults in tx, in three phases: lock (lockURLs, and
// lockTargetsLate once the batch's own rows are written), decide (decide: the Policy's calls, in
// Go, with no database access) and write (lockTargetsLate's round trip and writeShared). It
// returns the URL ids it looked up, for the cache once tx commits. Links whose ids known already
// holds skip the database.
//
// The lock order is a safety property (docs/adr/0017-lock-order.md,
// docs/adr/0044-batch-locks-its-targets-late.md): URLs in id order (round trip 1), then the
// targets in id order (round trip 2, after the pages and fetch history), then hosts in name
// order (round trip 3).
func applyResults(ctx context.Context, tx pgx.Tx, results []Result, pol Policy, known *urlCache) (Applied, []knownURL, error) {
	l, err := lockURLs(ctx, tx, results)
	if err != nil {
		return Applied{}, nil, err
	}
	w, err := decide(results, pol, l, known)
	if err != nil {
		return Applied{}, nil, err
	}
	if err := lockTargetsLate(ctx, tx, l, w); err != nil {
		return w.out, nil, err
	}
	if err := writeShared(ctx, tx, l, w, known); err != nil {
		return w.out, nil, err
	}
	return w.out, w.edges.learned, nil
}

// batchLocks is what the lock phase read: the batch's targets, not yet locked, and its URLs,
// locked.
type batchLocks struct {
	// targets are the batch's targets that are not being deleted, by id. lockTargetsLate
	// replaces their counters with the ones read under the targets' lock.
	targets map[int64]*Target
	// lockIDs are the ids of targets, ascending: the order they are locked in.
	lockIDs []int64
	// urls are the batch's URLs, locked, by id.
	urls map[int64]*URLRow
}

// lockURLs is round trip 1 of the lock phase: it reads the batch's targets (locked later, by
// lockTargetsLate) and locks its URLs (FOR NO KEY UPDATE), in id order.
func lockURLs(ctx context.Context, tx pgx.Tx, results []Result) (*batchLocks, error) {
	targetIDs := make([]int64, 0, 4)
	urlIDs := make([]int64, 0, len(results))
	for i := range results {
		targetIDs = append(targetIDs, results[i].TargetID)
		urlIDs = append(urlIDs, results[i].URLID)
	}
	slices.Sort(targetIDs)
	targetIDs = slices.Compact(targetIDs)
	slices.Sort(urlIDs)
	urlIDs = slices.Compact(urlIDs)

	b := &pgx.Batch{}
	b.Queue(`SELECT `+targetColumns+` FROM targets WHERE id = ANY($1) ORDER BY id`, targetIDs)
	b.Queue(`SELECT u.id, u.target_id, u.url, u.host, u.depth, u.state, u.attempts, coalesce(u.content_hash, ''),
		u.fetched_at IS NOT NULL, p.status, p.final_url, p.content_type
		FROM urls u LEFT JOIN pages p ON p.url_id = u.id
		WHERE u.id = ANY($1) ORDER BY u.id FOR NO KEY UPDATE OF u`, urlIDs)
	br := tx.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("lock targets: %w", err)
	}
	tlist, err := collectTargets(rows)
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("lock targets: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("lock urls: %w", err)
	}
	ulist, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (URLRow, error) {
		var u URLRow
		var status *int32
		var final, ctype *string
		if err := r.Scan(&u.ID, &u.TargetID, &u.URL, &u.Host, &u.Depth, &u.State, &u.Attempts, &u.ContentHash, &u.Fetched,
			&status, &final, &ctype); err != nil {
			return u, err
		}
		if status != nil {
			u.Stored = &StoredPage{Status: int(*status), FinalURL: *final, ContentType: *ctype}
		}
		return u, nil
	})
	if err != nil {
		br.Close()
		return nil, fmt.Errorf("lock urls: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	// A deleting target never changes again (no action applies to it), so its results are
	// dropped without taking its lock: the deleters hold it often, and a batch must not wait for
	// them (docs/adr/0004-deleting-targets-in-batches.md).
	l := &batchLocks{
		targets: make(map[int64]*Target, len(tlist)),
		lockIDs: make([]int64, 0, len(tlist)),
		urls:    make(map[int64]*URLRow, len(ulist)),
	}
	for i := range tlist {
		if tlist[i].State == TargetDeleting {
			continue
		}
		l.targets[tlist[i].ID] = &tlist[i]
		l.lockIDs = append(l.lockIDs, tlist[i].ID)
	}
	for i := range ulist {
		l.urls[ulist[i].ID] = &ulist[i]
	}
	return l, nil
}

// batchWrites is what the decide phase made of a batch: its counts so far and the rows the write
// phase writes.
type batchWrites struct {
	out      Applied
	upd      urlUpdates
	pages    pageRows
	hist     fetchRows
	edges    linkRows
	notMod   notModified
	rates    map[int64]*[2]int32  // by target: applied, errors
	hostHits map[string]*[2]int32 // by host: applied, errors
	links    map[int64][]NewURL   // by target
	pace     map[string]int       // host: the shortest fetch duration of the batch, in ms
	backoffs map[string]time.Time
}

// decide is the decide phase: it asks pol about each result against the rows the lock phase
// read, and collects the rows to write. It reads and writes nothing in the database; it updates
// l.urls' rows so that a second result for a URL in the batch is a duplicate. A result that
// names another URL than its leased one fails the whole batch with ErrURLMismatch.
func decide(results []Result, pol Policy, l *batchLocks, known *urlCache) (*batchWrites, error) {
	w := &batchWrites{
		rates:    map[int64]*[2]int32{},
		hostHits: map[string]*[2]int32{},
		links:    map[int64][]NewURL{},
		pace:     map[string]int{},
		backoffs: map[string]time.Time{},
	}
	for i := range results {
		r := &results[i]
		u, t := l.urls[r.URLID], l.targets[r.TargetID]
		if t == nil {
			w.out.Dropped++ // its target is being deleted, or gone
			continue
		}
		if u == nil || u.TargetID != r.TargetID || (u.State != URLQueued && u.State != URLDispatched) {
			w.out.Duplicates++
			continue
		}
		if r.URL != u.URL {
			// A page is stored only under the URL that was leased, never one a message names.
			named, _ := sanitize.Truncate(r.URL, 200)
			return nil, fmt.Errorf("%w: url id %d was leased as %q, the result names %q",
				ErrURLMismatch, u.ID, u.URL, named)
		}
		o := pol.Decide(r, t, u)
		same := o.StorePage && r.Status != http.StatusNotModified && unchanged(r, u)
		if o.State == URLQueued && t.State == TargetCancelled {
			o.State = URLCancelled // no retries for a cancelled target: it must become final
		}
		switch o.State {
		case URLQueued:
			w.out.Retried++
		case URLFailed:
			w.out.Failed++
		}
		class := errorClass(r)
		w.upd.add(r, u, o, class)
		w.hist.add(r, u, class)
		rate := w.rates[t.ID]
		if rate == nil {
			rate = new([2]int32)
			w.rates[t.ID] = rate
		}
		hit := w.hostHits[u.Host]
		if hit == nil {
			hit = new([2]int32)
			w.hostHits[u.Host] = hit
		}
		rate[0]++
		hit[0]++
		if class != "" {
			rate[1]++
			hit[1]++
		}
		u.State = o.State // a second result for the same URL in this batch is now a duplicate
		if r.Status != 0 {
			u.Fetched = true
		}
		if r.ContentHash != "" {
			u.ContentHash = r.ContentHash
		}
		w.out.Applied++
		switch {
		case o.StorePage && r.Status == http.StatusNotModified:
			w.notMod.add(r) // keep the stored content, links and edges
		case same:
			w.notMod.addSame(r) // the same body again: keep the content and edges, take the validators
		case o.StorePage:
			w.pages.add(r)
			w.edges.replace(r.URLID)
		}
		if o.State == URLDone && r.Error == "" && len(r.Links) > 0 && r.Status != http.StatusNotModified {
			// The page's canonical in-scope links are both its edges in the links table and,
			// within max_depth, unless the target is cancelled or the page says nofollow, new
			// frontier URLs. Beyond max_depth the policy is asked again with the depth limit
			// lifted, for edges only.
			var found []NewURL
			if u.Depth+1 <= t.MaxDepth {
				found = pol.Admit(t, u.Depth, r.Links)
				if t.State != TargetCancelled && !r.NoFollow {
					w.links[t.ID] = append(w.links[t.ID], found...)
				}
			} else {
				deeper := *t
				deeper.MaxDepth = u.Depth + 1
				found = pol.Admit(&deeper, u.Depth, r.Links)
			}
			if !same {
				w.edges.add(r.URLID, t.ID, found, known)
			}
		}
		if d, ok := w.pace[u.Host]; !ok || r.DurationMS < d {
			w.pace[u.Host] = max(r.DurationMS, 0)
		}
		if !o.HostBackoffUntil.IsZero() && o.HostBackoffUntil.After(w.backoffs[u.Host]) {
			w.backoffs[u.Host] = o.HostBackoffUntil
		}
	}
	return w, nil
}

// lockTargetsLate is round trip 2, where the write phase and the lock phase meet: it writes the
// rows that are this batch's own (pages, fetch history), which are most of the work, and only
// then locks the targets (FOR NO KEY UPDATE, in id order): another processor's batch for the
// same target commits meanwhile instead of waiting for all of this. The targets' counters and
// max_pages are read and changed by one batch at a time from here on; their settings must not
// have changed since round trip 1, or the decisions are stale and the whole transaction is
// tried again (errTargetChanged, from refresh).
func lockTargetsLate(ctx context.Context, tx pgx.Tx, l *batchLocks, w *batchWrites) error {
	b := &pgx.Batch{}
	if len(w.pages.urlIDs) > 0 {
		w.pages.queue(b)
	}
	w.notMod.queue(b)
	if len(w.hist.urlIDs) > 0 {
		w.hist.queue(b)
	}
	var locked []Target
	b.Queue(`SELECT `+targetColumns+` FROM targets WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, l.lockIDs).
		Query(func(rows pgx.Rows) error {
			var err error
			locked, err = collectTargets(rows)
			return err
		})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return refresh(l.targets, locked)
}

// writeShared is round trip 3 of the write phase, under the targets' locks: every other write,
// pipelined in order (URL states, rates, discovered URLs within max_pages, edges, hosts, host
// counts, the scheduler's wake-up and the done check), then the finished targets' hosts. It adds
// the discovered and finished targets to w.out.
func writeShared(ctx context.Context, tx pgx.Tx, l *batchLocks, w *batchWrites, known *urlCache) error {
	out := &w.out
	b := &pgx.Batch{}
	if len(w.upd.ids) > 0 {
		w.upd.queue(b)
	}
	queueRates(b, w.rates)
	newHosts := map[string]int{}
	for _, tid := range l.lockIDs {
		cand := w.links[tid]
		t := l.targets[tid]
		if len(cand) == 0 || t == nil {
			continue
		}
		remaining := int64(t.MaxPages) - t.URLsTotal
		if remaining <= 0 {
			continue
		}
		seen := make(map[string]struct{}, len(cand))
		var us, hs []string
		var ds []int32
		for _, c := range cand {
			if _, dup := seen[c.URL]; dup {
				continue
			}
			if _, ok := known.get(tid, c.URL); ok {
				continue // already in the frontier
			}
			seen[c.URL] = struct{}{}
			us, hs, ds = append(us, c.URL), append(hs, c.Host), append(ds, int32(c.Depth))
			// Only an active target paces a host (recomputeHosts); a paused one's new hosts get
			// its interval when it resumes.
			if ms := activeIntervalMS(t); newHosts[c.Host] < ms {
				newHosts[c.Host] = ms
			} else if _, ok := newHosts[c.Host]; !ok {
				newHosts[c.Host] = 0
			}
		}
		if len(us) == 0 {
			continue
		}
		b.Queue(newURLsSQL(remaining, len(us)), tid, us, hs, ds, remaining).QueryRow(func(row pgx.Row) error {
			var n int
			err := row.Scan(&n)
			out.Discovered += n
			return err
		})
	}
	// Edges go in after the new URLs, so that links to them resolve.
	w.edges.queue(b)
	if len(newHosts) > 0 {
		names, intervals := sortedHosts(newHosts)
		b.Queue(`
			INSERT INTO hosts (host, min_interval_ms)
			SELECT h, i FROM unnest($1::text[], $2::int[]) AS v(h, i) ORDER BY h
			ON CONFLICT (host) DO UPDATE SET min_interval_ms = EXCLUDED.min_interval_ms
			WHERE hosts.min_interval_ms < EXCLUDED.min_interval_ms`, names, intervals)
	}
	if len(w.pace) > 0 || len(w.backoffs) > 0 {
		hostSet := map[string]int{}
		for h := range w.pace {
			hostSet[h] = 0
		}
		for h := range w.backoffs {
			hostSet[h] = 0
		}
		names, _ := sortedHosts(hostSet)
		ran := make([]*int32, len(names))
		until := make([]*time.Time, len(names))
		for i, h := range names {
			if d, ok := w.pace[h]; ok {
				ran[i] = new(int32(d))
			}
			if bo, ok := w.backoffs[h]; ok {
				until[i] = &bo
			}
		}
		// Paced hosts: the next request may not start before this one's start plus the interval.
		// The start is bounded by the database's clock alone, not the crawler's StartedAt: a fetch
		// ended before its result was published, so it started at most its duration (measured on
		// the crawler's monotonic clock, rounded down) before now. A crawler clock behind the
		// database's, or a result without StartedAt, cannot bring the next slot forward; the
		// price is the result's time in the pipeline, added once per dispatch of the host's slots.
		b.Queue(`
			UPDATE hosts SET
				next_fetch_at = CASE WHEN greatest(min_interval_ms, crawl_delay_ms) > 0 AND v.d IS NOT NULL
					THEN greatest(next_fetch_at, now() + (greatest(min_interval_ms, crawl_delay_ms) - v.d) * interval '1 millisecond')
					ELSE next_fetch_at END,
				backoff_until = CASE WHEN v.b IS NOT NULL THEN greatest(coalesce(backoff_until, v.b), v.b) ELSE backoff_until END
			FROM unnest($1::text[], $2::int[], $3::timestamptz[]) AS v(h, d, b)
			WHERE hosts.host = v.h
			  AND (greatest(min_interval_ms, crawl_delay_ms) > 0 OR v.b IS NOT NULL)`, names, ran, until)
	}
	queueHostCounts(b, w.hostHits)
	// Wake the leading scheduler once this commits: URLs were freed or discovered.
	b.Queue(`SELECT pg_notify($1, '')`, FrontierChannel)
	b.Queue(`
		UPDATE targets SET state = 'done', finished_at = now(), updated_at = now()
		WHERE id = ANY($1) AND state = 'active' AND urls_total = urls_done + urls_failed + urls_cancelled
		  AND NOT EXISTS (SELECT 1 FROM sitemaps s WHERE s.target_id = targets.id AND s.state IN ('queued', 'dispatched'))
		RETURNING `+targetCountsColumns, l.lockIDs).Query(func(rows pgx.Rows) error {
		var err error
		out.Finished, out.FinishedCounts, err = collectTargetCounts(rows)
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	// Finished targets no longer pace their hosts.
	return recomputeTargetHosts(ctx, tx, out.Finished...)
}

// targetCountsColumns are read by collectTargetCounts.
const targetCountsColumns = `id, urls_total, urls_done, urls_failed, urls_cancelled`

// collectTargetCounts scans the rows of a RETURNING targetCountsColumns into ids and counters.
func collectTargetCounts(rows pgx.Rows) ([]int64, []TargetCounts, error) {
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TargetCounts, error) {
		var c TargetCounts
		return c, r.Scan(&c.ID, &c.URLs, &c.Done, &c.Failed, &c.Cancelled)
	})
	if err != nil || len(counts) == 0 {
		return nil, nil, err
	}
	ids := make([]int64, len(counts))
	for i, c := range counts {
		ids[i] = c.ID
	}
	return ids, counts, nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nilIfZero(v int32) *int32 {
	if v == 0 {
		return nil
	}
	return &v
}

// errorClass classifies a result for the dashboard: the crawler's class for a failed fetch,
// http_NNN for an HTTP error status, "" for a success.
func errorClass(r *Result) string {
	switch {
	case r.ErrorClass != "":
		return r.ErrorClass
	case r.Error != "":
		return "error"
	case r.Status >= http.StatusBadRequest:
		return "http_" + strconv.Itoa(r.Status)
	}
	return ""
}

func fetchedAt(r *Result) time.Time {
	if r.StartedAt.IsZero() {
		return time.Now()
	}
	return r.StartedAt
}
