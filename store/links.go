package store

import "github.com/jackc/pgx/v5"

// LinkRow is a URL of the frontier at one end of a link.
type LinkRow struct {
	URLID  int64
	URL    string
	State  string
	Status int // last HTTP status, 0 if never fetched
	Title  string
}

func scanLink(r pgx.CollectableRow) (LinkRow, error) {
	var l LinkRow
	return l, r.Scan(&l.URLID, &l.URL, &l.State, &l.Status, &l.Title)
}

// linkRows are the edges of this batch's pages, and the pages whose old edges they replace.
// An edge to a URL whose id is cached goes in as a pair of ids; the others are resolved through
// the unique index on (target_id, url), and the ids found are learned for the cache.
type linkRows struct {
	replaced         []int64
	from, targets    []int64
	to               []string
	pairTo, pairFrom []int64
	learned          []knownURL
}

// replace drops the stored edges of a page that is stored again.
func (l *linkRows) replace(urlID int64) { l.replaced = append(l.replaced, urlID) }

func (l *linkRows) add(from, target int64, found []NewURL, known *urlCache) {
	seen := make(map[string]struct{}, len(found))
	for _, n := range found {
		if _, dup := seen[n.URL]; dup {
			continue
		}
		seen[n.URL] = struct{}{}
		if id, ok := known.get(target, n.URL); ok {
			if id != from { // self-links are left out
				l.pairTo = append(l.pairTo, id)
				l.pairFrom = append(l.pairFrom, from)
			}
			continue
		}
		l.from = append(l.from, from)
		l.targets = append(l.targets, target)
		l.to = append(l.to, n.URL)
	}
}

func (l *linkRows) queue(b *pgx.Batch) {
	if len(l.replaced) > 0 {
		b.Queue(`DELETE FROM links WHERE from_url_id = ANY($1)`, l.replaced)
	}
	if len(l.from) == 0 && len(l.pairTo) == 0 {
		return
	}
	// A link resolves to a URL of the same target; links beyond max_pages have no URL and no
	// edge. Self-links are left out.
	b.Queue(`
		WITH m AS (
			SELECT u.id, u.target_id, u.url, v.f
			FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(f, t, url)
			JOIN urls u ON u.target_id = v.t AND u.url = v.url
		), ins AS (
			INSERT INTO links (to_url_id, from_url_id)
			SELECT id, f FROM m WHERE id <> f
			UNION ALL
			SELECT k.t, k.f FROM unnest($4::bigint[], $5::bigint[]) AS k(t, f)
			ON CONFLICT DO NOTHING
		)
		SELECT id, target_id, url FROM m`, l.from, l.targets, l.to, l.pairTo, l.pairFrom).
		Query(func(rows pgx.Rows) error {
			var k knownURL
			_, err := pgx.ForEachRow(rows, []any{&k.id, &k.key.target, &k.key.url}, func() error {
				l.learned = append(l.learned, k)
				return nil
			})
			return err
		})
}
