package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/migrations"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrSchemaOutdated is returned by CheckSchema when migrations are pending.
var ErrSchemaOutdated = errors.New("store: database schema is out of date")

// Store is a handle on the Trawl database.
type Store struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// searchProbe overrides searchScan, searchCap SearchCap (tests).
	searchProbe int
	searchCap   int
	// countCap overrides CountCap (tests).
	countCap int
	// known caches frontier URL ids for ApplyResults (nil: off).
	known *urlCache
}

// Open connects to the database at dsn, retrying with backoff until it answers or ctx ends.
func Open(ctx context.Context, dsn string, maxConns int32, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "trawl"
	return OpenConfig(ctx, cfg, log)
}

// OpenConfig is Open for a caller that shapes the pool itself: hooks such as AfterConnect, or
// ConnConfig.OnNotice to collect server notices (the bench uses both to capture auto_explain
// plans). It retries with backoff until the database answers or ctx ends.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, log *slog.Logger) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	s := &Store{pool: pool, log: log}
	for attempt := 0; ; attempt++ {
		err := pool.Ping(ctx)
		if err == nil {
			if attempt > 0 {
				log.Info("database connected", "attempts", attempt+1)
			}
			return s, nil
		}
		delay := backoff.Delay(attempt, 200*time.Millisecond, 10*time.Second)
		log.Warn("database unreachable, retrying", "err", err, "attempt", attempt+1, "retry_in", delay.String())
		if !backoff.Sleep(ctx, delay) {
			pool.Close()
			return nil, fmt.Errorf("store: connect: %w", ctx.Err())
		}
	}
}

// Close closes the pool. Safe to call more than once.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

func gooseProvider(db *sql.DB) (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns the resulting schema version.
func (s *Store) Migrate(ctx context.Context) (int64, error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := gooseProvider(db)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range results {
		s.log.Info("migration applied", "migration", r.Source.Version, "file", r.Source.Path, "duration", r.Duration.String())
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// SchemaVersion returns the database's applied version and the version this binary expects.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int64, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := gooseProvider(db)
	if err != nil {
		return 0, 0, err
	}
	srcs := p.ListSources()
	if len(srcs) > 0 {
		want = srcs[len(srcs)-1].Version
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, want, fmt.Errorf("store: schema version: %w", err)
	}
	if !exists {
		return 0, want, nil
	}
	have, err = p.GetDBVersion(ctx)
	if err != nil {
		return 0, want, fmt.Errorf("store: schema version: %w", err)
	}
	return have, want, nil
}

// CheckSchema fails with ErrSchemaOutdated unless every migration this binary knows is applied.
func (s *Store) CheckSchema(ctx context.Context) error {
	have, want, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if have < want {
		return fmt.Errorf("%w: database is at version %d, this binary needs %d: run `dashboard migrate` (or the compose service `migrate`) first", ErrSchemaOutdated, have, want)
	}
	return nil
}

// Transient reports whether err is worth retrying as is: a lost connection, a server shutting
// down (57P01 admin_shutdown and friends), a deadlock or serialization failure, or too many
// connections. Data errors (bad input, constraint violations, ErrInvalidResult) are not
// transient.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrInvalidResult) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57", "40", "58":
			return true
		}
		return false
	}
	// No server error at all: the connection failed or broke.
	return true
}

// inTx runs fn in a transaction, retrying deadlocks, serialization failures and targets that
// changed under a batch (errTargetChanged) a few times.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		retry := errors.Is(err, errTargetChanged) || errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
		if attempt < 5 && retry && backoff.Sleep(ctx, backoff.Delay(attempt, 5*time.Millisecond, 200*time.Millisecond)) {
			continue
		}
		return err
	}
}
