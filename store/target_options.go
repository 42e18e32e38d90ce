package store

import (
	"time"

	"github.com/jackc/pgx/v5"
)

// TargetOptions are a target's crawl options added with the crawl-fidelity work (migration
// 00004). They are kept apart from targetColumns, whose order other scans rely on.
type TargetOptions struct {
	// Sitemaps turns on sitemap discovery (robots.txt Sitemap lines and /sitemap.xml).
	Sitemaps bool
	// IncludeRegex and ExcludeRegex filter discovered URLs (RE2 syntax, matched against the
	// canonical URL); "" means no filter. Validated when the target is created.
	IncludeRegex string
	ExcludeRegex string
}

// targetFullColumns are targetColumns followed by the TargetOptions; scan them with
// scanTargetFull.
const targetFullColumns = targetColumns + `, sitemaps, include_regex, exclude_regex`

func scanTargetFull(row pgx.Row) (Target, error) {
	var t Target
	var recrawl float64
	err := row.Scan(&t.ID, &t.Name, &t.SeedURL, &t.Scope, &t.ScopePrefix, &t.MaxDepth, &t.MaxPages,
		&t.PerHostRPS, &t.MaxAttempts, &recrawl, &t.State, &t.URLsTotal, &t.URLsDone, &t.URLsFailed,
		&t.URLsCancelled, &t.CreatedAt, &t.UpdatedAt, &t.FinishedAt,
		&t.Sitemaps, &t.IncludeRegex, &t.ExcludeRegex)
	t.RecrawlInterval = time.Duration(recrawl * float64(time.Second))
	return t, err
}
