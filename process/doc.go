// Package process persists fetch results into Postgres and schedules what is due next. The
// processor consumes results in batches, applies each batch in one transaction and acks only
// after the commit; the scheduler leases due URLs and publishes them as crawl jobs.
package process
