package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// BulkLoad describes a finished crawl to load with BulkLoadDone: URLs spread round-robin over
// Hosts hosts, every one done with a stored page of about TextBytes bytes of text.
type BulkLoad struct {
	Name string // target name; empty means "bulk"
	// URLs is the number of URLs, and of pages (at least 1).
	URLs int
	// Hosts is how many hosts the URLs are spread over (default 300), named
	// www.site-NNN.<Domain>.
	Hosts int
	// Domain is the hosts' parent domain (default "bulk.test").
	Domain string
	// TextBytes is the approximate size of each page's text (default 500).
	TextBytes int
	// Unindexed leaves the pages queued for the search indexers (search_queue) instead of
	// building their search vectors in the load, as a crawl whose indexing lags would.
	Unindexed bool
}

// BulkLoadDone stores a finished target (state done) whose frontier holds l.URLs URLs, all
// done, each with a page whose text, title and hash are a deterministic function of its index,
// and (unless l.Unindexed) the page's search vector. It streams the rows with COPY in one
// transaction, sets the target's counters from what it loaded, and vacuums and analyses the
// tables it filled, as autovacuum would long have done on a database that has held them for a
// while, and checkpoints: the planner sees their size, and neither a vacuum of a million fresh
// rows (which autovacuum starts soon after such a load) nor the load's checkpoint runs during
// what is measured next.
//
// It is for benchmarks and load tests: it writes no fetch history, links or rates, and a
// million URLs take a few minutes on a small machine, mostly for the search vectors and the
// index maintenance of pages and page_search.
func (s *Store) BulkLoadDone(ctx context.Context, l BulkLoad) (Target, error) {
	if l.URLs < 1 {
		return Target{}, errors.New("store: bulk load: URLs must be at least 1")
	}
	l.Name = cmp.Or(l.Name, "bulk")
	l.Domain = cmp.Or(l.Domain, "bulk.test")
	if l.Hosts < 1 {
		l.Hosts = 300
	}
	if l.TextBytes < 1 {
		l.TextBytes = 500
	}
	hosts := make([]string, l.Hosts)
	for h := range hosts {
		hosts[h] = fmt.Sprintf("www.site-%03d.%s", h, l.Domain)
	}
	urlOf := func(i int) (string, string) {
		h := hosts[i%len(hosts)]
		n := i / len(hosts)
		return fmt.Sprintf("http://%s/archive/%d/%02d/post-%d-%s.html", h, 2000+n%25, 1+n%12, i, bulkWords[i%len(bulkWords)]), h
	}
	var t Target
	fetched := time.Now().Add(-time.Hour).UTC()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Only the seeding transaction waits for its WAL flush; it is rebuilt on a crash anyway.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		seed, _ := urlOf(0)
		var err error
		t, err = scanTarget(tx.QueryRow(ctx, `
			INSERT INTO targets (name, seed_url, scope, max_depth, max_pages, max_attempts, state, finished_at, sitemaps)
			VALUES ($1, $2, 'domain', 1000, $3, 4, 'done', now(), false)
			RETURNING `+targetColumns, l.Name, seed, l.URLs))
		if err != nil {
			return fmt.Errorf("insert target: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO hosts (host) SELECT h FROM unnest($1::text[]) AS v(h) ORDER BY h ON CONFLICT (host) DO NOTHING`,
			hosts); err != nil {
			return fmt.Errorf("insert hosts: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO target_hosts (target_id, host) SELECT $1, h FROM unnest($2::text[]) AS v(h)`,
			t.ID, hosts); err != nil {
			return fmt.Errorf("insert target hosts: %w", err)
		}
		// URLs: ids come from the sequence in row order, so the i-th smallest id is row i.
		i := 0
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"urls"},
			[]string{"target_id", "url", "host", "depth", "state", "attempts", "dispatches", "last_status", "content_hash", "discovered_at", "fetched_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == l.URLs {
					return nil, nil
				}
				u, h := urlOf(i)
				row := []any{t.ID, u, h, min(i, 1+i%7), URLDone, 1, 1, 200, bulkHash(i), fetched, fetched}
				i++
				return row, nil
			}))
		if err != nil {
			return fmt.Errorf("copy urls: %w", err)
		}
		if n != int64(l.URLs) {
			return fmt.Errorf("copy urls: %d rows, want %d", n, l.URLs)
		}
		rows, err := tx.Query(ctx, `SELECT id FROM urls WHERE target_id = $1 ORDER BY id`, t.ID)
		if err != nil {
			return fmt.Errorf("url ids: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("url ids: %w", err)
		}
		i = 0
		var text strings.Builder
		n, err = tx.CopyFrom(ctx, pgx.Identifier{"pages"},
			[]string{"url_id", "target_id", "url", "final_url", "status", "content_type", "title", "body_text", "size_bytes", "link_count", "content_hash", "fetched_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(ids) {
					return nil, nil
				}
				u, _ := urlOf(i)
				text.Reset()
				bulkText(&text, i, l.TextBytes)
				body := text.String()
				title := "Post " + strconv.Itoa(i) + " " + bulkWords[(i*7)%len(bulkWords)]
				row := []any{ids[i], t.ID, u, u, 200, "text/html; charset=utf-8", title, body, len(body) + 900, 0, bulkHash(i), fetched}
				i++
				return row, nil
			}))
		if err != nil {
			return fmt.Errorf("copy pages: %w", err)
		}
		if n != int64(l.URLs) {
			return fmt.Errorf("copy pages: %d rows, want %d", n, l.URLs)
		}
		// The COPY queued every page for the search indexers (trigger pages_queue_insert).
		if !l.Unindexed {
			if _, err := tx.Exec(ctx, `
				INSERT INTO page_search (url_id, target_id, tsv)
				SELECT url_id, target_id, page_tsv(title, body_text) FROM pages WHERE target_id = $1 ORDER BY url_id`, t.ID); err != nil {
				return fmt.Errorf("search vectors: %w", err)
			}
			if _, err := tx.Exec(ctx, `
				DELETE FROM search_queue q USING urls u WHERE u.id = q.url_id AND u.target_id = $1`, t.ID); err != nil {
				return fmt.Errorf("search queue: %w", err)
			}
		}
		// Exact counters whatever the urls_count triggers did with the COPY (they fire on it,
		// per statement, but the insert trigger counts only urls_total).
		if _, err := tx.Exec(ctx, `
			UPDATE targets t SET urls_total = c.total, urls_done = c.done, urls_failed = c.failed,
			       urls_cancelled = c.cancelled, updated_at = now()
			FROM (SELECT count(*) AS total, count(*) FILTER (WHERE state = 'done') AS done,
			             count(*) FILTER (WHERE state = 'failed') AS failed,
			             count(*) FILTER (WHERE state = 'cancelled') AS cancelled
			      FROM urls WHERE target_id = $1) c
			WHERE t.id = $1`, t.ID); err != nil {
			return fmt.Errorf("set counters: %w", err)
		}
		t, err = scanTarget(tx.QueryRow(ctx, `SELECT `+targetColumns+` FROM targets WHERE id = $1`, t.ID))
		if err != nil {
			return fmt.Errorf("read target: %w", err)
		}
		return nil
	})
	if err != nil {
		return Target{}, fmt.Errorf("store: bulk load %d urls: %w", l.URLs, err)
	}
	// search_queue is analysed only when the load filled it: statistics taken while it is
	// empty would be the load's doing, not the crawl's. It is vacuumed either way: an indexed
	// load queued and deleted a row per page, and counting its backlog would read them all.
	vacuum := []string{`VACUUM (ANALYZE) targets, hosts, target_hosts, urls, pages, page_search, search_queue`}
	if !l.Unindexed {
		vacuum = []string{`VACUUM (ANALYZE) targets, hosts, target_hosts, urls, pages, page_search`, `VACUUM search_queue`}
	}
	for _, q := range vacuum {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return Target{}, fmt.Errorf("store: bulk load: vacuum: %w", err)
		}
	}
	// The load and its vacuum wrote gigabytes of WAL: end with a checkpoint, so that the one
	// they set off is not still writing, and every first change of a page not still logging
	// the whole page, during what is measured next (needs superuser or pg_checkpoint).
	if _, err := s.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return Target{}, fmt.Errorf("store: bulk load: checkpoint: %w", err)
	}
	return t, nil
}

func bulkHash(i int) string {
	sum := sha256.Sum256([]byte("bulk-" + strconv.Itoa(i)))
	return hex.EncodeToString(sum[:])
}

// bulkText writes about size bytes of words chosen by a small generator seeded with i.
func bulkText(b *strings.Builder, i, size int) {
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	for b.Len() < size {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(bulkWords[x%uint64(len(bulkWords))])
	}
}

var bulkWords = strings.Fields(`
	archive article author autumn balance banner battery beacon border bridge budget button
	cabinet camera canvas carbon castle ceiling channel chapter circuit citizen climate cluster
	coffee column comfort compass concert copper cottage courage crystal culture curtain
	customer dancer danger decade desert device diamond digital dinner doctor dragon drawer
	eagle economy editor effort elbow element empire energy engine estate evening exhibit
	fabric factory falcon family fashion feather festival figure finance forest fortune
	fountain freedom friend frontier galaxy garden garlic gateway gender giant ginger glacier
	harbor harvest health helmet heritage highway history holiday horizon hospital hunter
	island jacket journal journey jungle justice kernel kitchen ladder language laptop
	lantern leather legend letter library license lighthouse limestone liquid lobster
	machine magnet mammal manager marble market meadow medicine memory mentor message
	method midnight mineral mirror mission module moment monitor morning mountain museum
	napkin network nickel notebook number ocean office orange orchard outcome oxygen
	package painter palace pardon parent passage pattern pepper physics picture pigeon
	pilgrim pioneer planet plastic pocket poetry polish portrait powder prairie printer
	problem program project protein puzzle pyramid quarter question rabbit railway random
	reactor recipe record region remote report rescue result ribbon river rocket rubber
	saddle salmon sandal satellite school science season second secret section senate
	shadow shelter signal silver sister sketch soldier speaker spirit spring squirrel
	station statue stomach storage strategy student studio subject summer sunset supply
	surface symbol system teacher temple tennis theory thunder ticket timber tobacco tomato
	tourist tractor traffic trumpet tunnel turtle uniform universe valley vessel village
	violin volcano voyage wagon walnut warrior weather website whisper window winter wizard
	wonder yellow zebra`)
