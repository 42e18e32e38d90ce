package store

import (
	"context"
	"errors"
	"time"
)

var errTODO = errors.New("store: not implemented yet")

// Overview returns the frontier across every target and the active targets.
func (s *Store) Overview(ctx context.Context) (Overview, error) { return Overview{}, errTODO }

// Throughput returns fetches and errors per bucket over the last window, oldest first, with
// every bucket present. targetID 0 means every target.
func (s *Store) Throughput(ctx context.Context, targetID int64, window, bucket time.Duration) ([]RatePoint, error) {
	return nil, errTODO
}

// TargetList returns one page of targets with their live figures, newest first.
func (s *Store) TargetList(ctx context.Context, q TargetQuery) (TargetList, error) {
	return TargetList{}, errTODO
}

// TargetSummary returns one target with its live figures.
func (s *Store) TargetSummary(ctx context.Context, id int64) (TargetSummary, error) {
	return TargetSummary{}, errTODO
}

// TargetHosts returns one page of a target's hosts with their politeness state, by host name.
func (s *Store) TargetHosts(ctx context.Context, targetID int64, after string, limit int) (HostList, error) {
	return HostList{}, errTODO
}

// TargetErrors groups a target's URLs that carry an error by error class, biggest first.
func (s *Store) TargetErrors(ctx context.Context, targetID int64, limit int) ([]ErrorGroup, error) {
	return nil, errTODO
}

// Pages returns one page of a target's stored pages.
func (s *Store) Pages(ctx context.Context, q PageQuery) (PageList, error) { return PageList{}, errTODO }

// Search runs a full-text search over stored pages.
func (s *Store) Search(ctx context.Context, q SearchQuery) (SearchResults, error) {
	return SearchResults{}, errTODO
}

// PageDetail returns everything known about one URL.
func (s *Store) PageDetail(ctx context.Context, urlID int64) (PageDetail, error) {
	return PageDetail{}, errTODO
}

// FetchHistory returns a URL's latest fetches, newest first.
func (s *Store) FetchHistory(ctx context.Context, urlID int64, limit int) ([]Fetch, error) {
	return nil, errTODO
}

// Retrying lists URLs waiting for a retry, soonest next attempt first.
func (s *Store) Retrying(ctx context.Context, f URLFilter) (URLList, error) {
	return URLList{}, errTODO
}

// Failed lists URLs that failed for good, most recent first.
func (s *Store) Failed(ctx context.Context, f URLFilter) (URLList, error) { return URLList{}, errTODO }

// ExportPages streams a target's stored pages to fn in url_id order, never holding them all.
func (s *Store) ExportPages(ctx context.Context, targetID int64, fn func(ExportRow) error) error {
	return errTODO
}
