// CONTRACT READY: the exported types and method signatures in this file are stable; DASH-WEB
// codes against them. Implementations live in dashboard_*.go.

package store

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidQuery marks a dashboard query with bad parameters (an unknown sort column, a
// malformed cursor or status filter). Handlers answer 400 for it.
var ErrInvalidQuery = errors.New("store: invalid query")

// URLCancelled is the state of a URL whose target was cancelled before it was fetched. It is
// final: a cancelled target has nothing pending once its in-flight fetches are applied.
const URLCancelled = "cancelled"

// Overview is the frontier across every target, for the dashboard's first page.
type Overview struct {
	// Queued URLs waiting for their first fetch (queued with no failed attempt yet).
	Queued int64 `json:"queued"`
	// Dispatched URLs leased to a crawler and not yet applied.
	Dispatched int64 `json:"dispatched"`
	// Retrying URLs: queued again after a failed attempt (attempts > 0).
	Retrying int64 `json:"retrying"`
	// Failed URLs: failed for good.
	Failed int64 `json:"failed"`
	// Done URLs: fetched.
	Done int64 `json:"done"`
	// Discovered URLs in every target.
	Discovered int64 `json:"discovered"`
	// SearchBacklog is the number of stored pages not yet searchable: their search vectors are
	// built in the background by the processors (store.IndexPages).
	SearchBacklog int64 `json:"search_backlog"`
	// Targets counts targets by stored state (active, paused, done, cancelled).
	Targets map[string]int64 `json:"targets"`
	// Active targets (active or paused), newest first, at most OverviewActiveLimit.
	Active []TargetSummary `json:"active"`
}

// OverviewActiveLimit caps Overview.Active.
const OverviewActiveLimit = 20

// TargetSummary is a target with its live figures.
type TargetSummary struct {
	Target
	// Dispatched URLs of this target in flight now.
	Dispatched int64 `json:"dispatched"`
	// Retrying URLs of this target (queued after a failed attempt).
	Retrying int64 `json:"retrying"`
	// Cancelled URLs (never fetched because the target was cancelled); same as URLsCancelled.
	Cancelled int64 `json:"cancelled"`
	// PagesPerSec and ErrorsPerSec are averaged over the last RateWindow.
	PagesPerSec  float64 `json:"pages_per_sec"`
	ErrorsPerSec float64 `json:"errors_per_sec"`
}

// RateWindow is the span TargetSummary's rates are averaged over.
const RateWindow = time.Minute

// Progress is the share of discovered URLs that are finished (done, failed or cancelled), 0..1.
func (s TargetSummary) Progress() float64 {
	if s.URLsTotal == 0 {
		return 0
	}
	return float64(s.URLsDone+s.URLsFailed+s.Cancelled) / float64(s.URLsTotal)
}

// Queued is the number of URLs of this target waiting for a fetch (first or retry).
func (s TargetSummary) Queued() int64 {
	return max(0, s.Pending()-s.Dispatched)
}

// TargetList is one page of targets, newest first.
type TargetList struct {
	Rows []TargetSummary `json:"rows"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// TargetQuery pages through targets, newest first.
type TargetQuery struct {
	State string // optional stored state filter: active, paused, done, cancelled
	After string // cursor from TargetList.NextCursor
	Limit int    // 1..500; 0 means 50
}

// RatePoint is one bucket of the throughput chart.
type RatePoint struct {
	At     time.Time `json:"at"`     // bucket start
	Pages  int64     `json:"pages"`  // fetches applied in the bucket (pages and errors)
	Errors int64     `json:"errors"` // of which failed: a network error or an HTTP status >= 400
}

// HostState is one host of a target with its politeness state, shared by all targets.
type HostState struct {
	Host          string     `json:"host"`
	NextFetchAt   time.Time  `json:"next_fetch_at"`
	MinIntervalMS int        `json:"min_interval_ms"`
	CrawlDelayMS  int        `json:"crawl_delay_ms"`
	BackoffUntil  *time.Time `json:"backoff_until,omitempty"`
	// RobotsStatus is the HTTP status of the last robots.txt fetch; nil when not fetched yet.
	RobotsStatus    *int       `json:"robots_status,omitempty"`
	RobotsFetchedAt *time.Time `json:"robots_fetched_at,omitempty"`
	InFlight        int64      `json:"in_flight"` // URLs of this host dispatched now (all targets)
	Fetches         int64      `json:"fetches"`   // fetches applied for this host (all targets)
	Errors          int64      `json:"errors"`    // of which errors: network or HTTP status >= 400
}

// HostList is one page of a target's hosts, by host name.
type HostList struct {
	Rows       []HostState `json:"rows"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// ErrorGroup is one error class of a target's URLs that currently carry an error (retrying,
// failed, or fetched with an HTTP error status), with one sample.
type ErrorGroup struct {
	Class        string `json:"class"` // network classes (timeout, dns, ...) or http_NNN
	Count        int64  `json:"count"`
	SampleURLID  int64  `json:"sample_url_id"`
	SampleURL    string `json:"sample_url"`
	SampleError  string `json:"sample_error,omitempty"`
	SampleStatus int    `json:"sample_status,omitempty"`
	// LastSeen is when the sample (the group's most recently discovered URL) was last fetched.
	LastSeen time.Time `json:"last_seen"`
}

// Page sort columns for PageQuery.Sort.
const (
	SortURL       = "url"
	SortFetchedAt = "fetched_at"
	SortStatus    = "status"
	SortSize      = "size"
)

// PageQuery lists one target's stored pages, keyset-paginated.
type PageQuery struct {
	TargetID int64 // required
	// Status filters by HTTP status: a class like "2xx" or "4xx", or an exact code like "404".
	Status string
	// ContentType filters by media type prefix, case-insensitive: "text/html" matches
	// "text/html; charset=utf-8".
	ContentType string
	Sort        string // SortURL (default), SortFetchedAt, SortStatus or SortSize
	Desc        bool
	After       string // cursor from PageList.NextCursor; only valid with the same filters and sort
	Limit       int    // 1..500; 0 means 50
}

// PageRow is a stored page in a listing.
type PageRow struct {
	URLID       int64     `json:"url_id"`
	TargetID    int64     `json:"target_id"`
	URL         string    `json:"url"`
	Status      int       `json:"status"`
	ContentType string    `json:"content_type"`
	Title       string    `json:"title"`
	Size        int       `json:"size"`
	DurationMS  int       `json:"duration_ms"`
	FetchedAt   time.Time `json:"fetched_at"`
}

// PageList is one page of PageRows.
type PageList struct {
	Rows       []PageRow `json:"rows"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// SearchQuery is a full-text search over stored pages (websearch syntax: words, "phrases",
// -excluded, or). Results are newest first.
type SearchQuery struct {
	Query    string
	TargetID int64  // 0 searches every target
	After    string // cursor from SearchResults.NextCursor
	Limit    int    // 1..100; 0 means 20
}

// SnippetPart is a piece of a search snippet. Hit parts are the matched words. Text is plain
// text straight from a crawled page: escape it when rendering.
type SnippetPart struct {
	Text string `json:"text"`
	Hit  bool   `json:"hit,omitempty"`
}

// SearchHit is one search result.
type SearchHit struct {
	URLID     int64         `json:"url_id"`
	TargetID  int64         `json:"target_id"`
	URL       string        `json:"url"`
	Title     string        `json:"title"`
	Status    int           `json:"status"`
	FetchedAt time.Time     `json:"fetched_at"`
	Snippet   []SnippetPart `json:"snippet"`
}

// SearchResults is one page of search hits.
type SearchResults struct {
	Hits       []SearchHit `json:"hits"`
	NextCursor string      `json:"next_cursor,omitempty"`
	// Unindexed is the number of stored pages (of every target) that search cannot find yet
	// because the background indexer has not reached them.
	Unindexed int64 `json:"unindexed"`
}

// PageDetail is everything known about one URL: its frontier row and, once fetched, its page.
type PageDetail struct {
	URLID         int64      `json:"url_id"`
	TargetID      int64      `json:"target_id"`
	URL           string     `json:"url"`
	Host          string     `json:"host"`
	Depth         int        `json:"depth"`
	State         string     `json:"state"` // queued, dispatched, done, failed, cancelled
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastError     string     `json:"last_error,omitempty"`
	ErrorClass    string     `json:"error_class,omitempty"`
	DiscoveredAt  time.Time  `json:"discovered_at"`
	FetchedAt     *time.Time `json:"fetched_at,omitempty"`
	// Page is nil until the URL has a stored page.
	Page *PageInfo `json:"page,omitempty"`
	// Outlinks are the links of the page that are in the target's frontier (canonical).
	Outlinks []LinkRow `json:"outlinks"`
	// Links are all links extracted from the page as found, at most DetailLinkLimit.
	Links []string `json:"links"`
	// Inlinks are pages of the same target that link to this one, at most DetailLinkLimit.
	Inlinks []LinkRow `json:"inlinks"`
	// MoreInlinks is true when there are more inlinks than listed.
	MoreInlinks bool `json:"more_inlinks,omitempty"`
	// History is the latest fetches, newest first, at most DetailHistoryLimit.
	History []Fetch `json:"history"`
}

// DetailLinkLimit and DetailHistoryLimit bound the lists in PageDetail.
const (
	DetailLinkLimit    = 200
	DetailHistoryLimit = 50
)

// PageInfo is the stored latest fetch of a URL.
type PageInfo struct {
	FinalURL     string    `json:"final_url"`
	Status       int       `json:"status"`
	ContentType  string    `json:"content_type"`
	Title        string    `json:"title"`
	Size         int       `json:"size"`
	Truncated    bool      `json:"truncated"`
	DurationMS   int       `json:"duration_ms"`
	LinkCount    int       `json:"link_count"`
	ContentHash  string    `json:"content_hash"`
	ETag         string    `json:"etag"`
	LastModified string    `json:"last_modified"`
	FetchedAt    time.Time `json:"fetched_at"`
	StoredAt     time.Time `json:"stored_at"`
}

// LinkRow is a URL of the frontier at one end of a link.
type LinkRow struct {
	URLID  int64  `json:"url_id"`
	URL    string `json:"url"`
	State  string `json:"state"`
	Status int    `json:"status,omitempty"` // last HTTP status, 0 if never fetched
	Title  string `json:"title,omitempty"`
}

// Fetch is one fetch attempt of a URL, as applied by the processor.
type Fetch struct {
	FetchedAt   time.Time `json:"fetched_at"`
	Status      int       `json:"status,omitempty"` // 0 when no response (network error)
	DurationMS  int       `json:"duration_ms"`
	Size        int       `json:"size"`
	ContentHash string    `json:"content_hash,omitempty"`
	// Changed is true when the content hash differs from the previous fetch's (always true for
	// the first successful fetch; false for 304 Not Modified and for errors).
	Changed    bool   `json:"changed"`
	ErrorClass string `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`
}

// URLFilter selects frontier URLs for the retry and failure lists; zero fields match all.
type URLFilter struct {
	TargetID   int64
	Host       string
	ErrorClass string
	After      string // cursor from URLList.NextCursor
	Limit      int    // 1..500; 0 means 50
}

// URLRowInfo is a URL waiting for a retry or failed for good.
type URLRowInfo struct {
	URLID         int64      `json:"url_id"`
	TargetID      int64      `json:"target_id"`
	URL           string     `json:"url"`
	Host          string     `json:"host"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"` // for retrying URLs
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	ErrorClass    string     `json:"error_class,omitempty"`
	FetchedAt     *time.Time `json:"fetched_at,omitempty"`
}

// URLList is one page of URLRowInfo.
type URLList struct {
	Rows       []URLRowInfo `json:"rows"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ExportRow is one stored page in an export, in url_id order.
type ExportRow struct {
	URLID        int64     `json:"url_id"`
	URL          string    `json:"url"`
	FinalURL     string    `json:"final_url"`
	Depth        int       `json:"depth"`
	Status       int       `json:"status"`
	ContentType  string    `json:"content_type"`
	Title        string    `json:"title"`
	Size         int       `json:"size"`
	Truncated    bool      `json:"truncated"`
	DurationMS   int       `json:"duration_ms"`
	LinkCount    int       `json:"link_count"`
	ContentHash  string    `json:"content_hash"`
	ETag         string    `json:"etag"`
	LastModified string    `json:"last_modified"`
	FetchedAt    time.Time `json:"fetched_at"`
	Text         string    `json:"text"`
}

// ErrTargetState (wrapped) is returned when an action does not apply to the target's current
// state, such as resuming a cancelled target. Handlers answer 409 for it.
var ErrTargetState = errors.New("store: action not allowed in the target's state")

// ErrTargetDeleting (wrapped) is ErrTargetState for a target that is being deleted: no action
// but deleting it again applies to it. Handlers answer 409 and say why.
var ErrTargetDeleting = fmt.Errorf("%w: the target is being deleted", ErrTargetState)

// Besides the queries, dashboard_targets.go has the target actions (Pause/Resume/Cancel/
// Delete/RecrawlTarget, RequeueDueTargets for the scheduler) and RequeueFailedURLs /
// RequeueAllFailed, which give failed URLs a fresh set of attempts.
//
// The dashboard's methods on *Store (ctx first; lists keyset-paginated; ErrNotFound for a
// missing target or URL; ErrInvalidQuery for bad parameters) are in dashboard_query.go
// (reads) and dashboard_targets.go (target actions).
