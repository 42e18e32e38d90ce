// Package store is Trawl's PostgreSQL layer: the crawl frontier (targets, hosts, urls), the
// stored pages, and the scheduler's dispatch queries. All SQL lives here. Postgres is the source
// of truth: if the broker lost every message, the frontier still lets a crawl finish.
package store
