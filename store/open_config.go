package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenConfig is Open for a caller that needs to shape the pool itself: hooks such as
// AfterConnect, or ConnConfig.OnNotice to collect server notices (the bench uses both to capture
// auto_explain plans). Unlike Open it does not retry: the database must answer now.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config, log *slog.Logger) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	return &Store{pool: pool, log: log}, nil
}
