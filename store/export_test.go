package store

import (
	"context"

	"github.com/jackc/pgx/v5/stdlib"
)

// HostIntervalSQL exports hostIntervalSQL for TestHostIntervalSQLMatchesGo.
const HostIntervalSQL = hostIntervalSQL

// SetSearchProbe makes s check only the newest n pages before it turns to the GIN index, so
// that tests reach both of Search's steps with a few pages.
func SetSearchProbe(s *Store, n int) { s.searchProbe = n }

// SetCountCap makes s count a listing's rows exactly only up to n, so that tests reach the
// planner's estimate with a few rows.
func SetCountCap(s *Store, n int) { s.countCap = n }

// MigrateDownTo rolls the schema back to version.
func MigrateDownTo(ctx context.Context, s *Store, version int64) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := gooseProvider(db)
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, version)
	return err
}

// DiscoverURLsSQL and InsertURLsSQL are the statements ApplyResults inserts discovered URLs
// with, near max_pages and with room for every link.
const (
	DiscoverURLsSQL = discoverURLsSQL
	InsertURLsSQL   = insertURLsSQL
	DueHostsSQL     = dueHostsSQL
	LeaseSQL        = leaseSQL
	RobotsDueSQL    = robotsDueSQL
	PruneFetchesSQL = pruneFetchesSQL
	PruneRatesSQL   = pruneRatesSQL
)

// URLCacheHits counts lookups that found a URL id in s's cache.
func URLCacheHits(s *Store) int64 {
	if s.known == nil {
		return 0
	}
	return s.known.hits.Load()
}

// SetSearchCap makes s rank at most n matches, so that tests pass the cap with a few pages.
func SetSearchCap(s *Store, n int) { s.searchCap = n }
