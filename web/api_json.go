package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// The JSON API's response bodies, one type per resource, and the functions that fill them from
// the store's (and the broker's) plain structs. The field names, omitempty, the formats (times
// as RFC 3339 with nanoseconds, numbers as Go encodes them) and null for a nil list are a
// contract that README.md documents and TestAPIShapes pins: the store may rename a field, the
// API may not. See docs/adr/0051-json-shapes-belong-to-web.md.

// mapJSON maps a list to its view models. A nil list stays nil, so it encodes as null as it
// always has; an empty one stays empty ([]).
func mapJSON[S, T any](xs []S, f func(S) T) []T {
	if xs == nil {
		return nil
	}
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// httpDate turns a site's Last-Modified header into RFC 3339 in UTC, like every other time of
// the API; a value that is not an HTTP date (or none) gives "". The crawler keeps sending the
// header's own text back in If-Modified-Since.
func httpDate(v string) string {
	t, err := http.ParseTime(v)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ListJSON is one page of a keyset-paginated listing: its rows and, when there are more, the
// cursor to pass as the after parameter for the next page and, for the pages and URL lists,
// the one to pass as the before parameter for the previous page.
type ListJSON[T any] struct {
	Rows       []T    `json:"rows"`
	NextCursor string `json:"next_cursor,omitempty"`
	PrevCursor string `json:"prev_cursor,omitempty"`
}

func toListJSON[S, T any](rows []S, prev, next string, f func(S) T) ListJSON[T] {
	return ListJSON[T]{Rows: mapJSON(rows, f), NextCursor: next, PrevCursor: prev}
}

// QueueJSON is one queue's depth, in /api/overview and /api/queues.
type QueueJSON struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Ready     int64  `json:"ready"`
	Unacked   int64  `json:"unacked"` // -1: unknown (the figures came from a passive declare)
	Consumers int64  `json:"consumers"`
	Source    string `json:"source"` // "management" or "amqp"
}

func toQueueJSON(q pipeline.QueueStat) QueueJSON {
	return QueueJSON{Name: q.Name, Role: q.Role, Ready: q.Ready, Unacked: q.Unacked, Consumers: q.Consumers, Source: q.Source}
}

// RatePointJSON is one bucket of /api/throughput.
type RatePointJSON struct {
	At     time.Time `json:"at"`
	Pages  int64     `json:"pages"`
	Errors int64     `json:"errors"`
}

func toRatePointJSON(p store.RatePoint) RatePointJSON {
	return RatePointJSON{At: p.At, Pages: p.Pages, Errors: p.Errors}
}

// SearchResultsJSON is the body of /api/search.
type SearchResultsJSON struct {
	Hits       []SearchHitJSON `json:"hits"`
	NextCursor string          `json:"next_cursor,omitempty"`
	Unindexed  int64           `json:"unindexed"`
	// Total is the number of matching pages, exact up to store.SearchCap; TotalCapped says
	// that more match (Total is then the cap).
	Total       int64 `json:"total"`
	TotalCapped bool  `json:"total_capped,omitempty"`
}

// SearchHitJSON is one search result.
type SearchHitJSON struct {
	URLID     int64         `json:"url_id"`
	TargetID  int64         `json:"target_id"`
	URL       string        `json:"url"`
	Title     string        `json:"title"`
	Status    int           `json:"status"`
	FetchedAt time.Time     `json:"fetched_at"`
	Snippet   []SnippetJSON `json:"snippet"`
}

// SnippetJSON is a piece of a search snippet; Hit marks the matched words.
type SnippetJSON struct {
	Text string `json:"text"`
	Hit  bool   `json:"hit,omitempty"`
}

func toSearchResultsJSON(r store.SearchResults) SearchResultsJSON {
	return SearchResultsJSON{Hits: mapJSON(r.Hits, toSearchHitJSON), NextCursor: r.NextCursor, Unindexed: r.Unindexed,
		Total: r.Total, TotalCapped: r.TotalCapped}
}

func toSearchHitJSON(h store.SearchHit) SearchHitJSON {
	return SearchHitJSON{URLID: h.URLID, TargetID: h.TargetID, URL: h.URL, Title: h.Title, Status: h.Status,
		FetchedAt: h.FetchedAt, Snippet: mapJSON(h.Snippet, func(p store.SnippetPart) SnippetJSON {
			return SnippetJSON{Text: p.Text, Hit: p.Hit}
		})}
}

// PageDetailJSON is the body of /api/pages/:id: a URL's frontier row and, once fetched, its page.
type PageDetailJSON struct {
	URLID         int64         `json:"url_id"`
	TargetID      int64         `json:"target_id"`
	URL           string        `json:"url"`
	Host          string        `json:"host"`
	Depth         int           `json:"depth"`
	State         string        `json:"state"`
	Attempts      int           `json:"attempts"`
	NextAttemptAt time.Time     `json:"next_attempt_at"`
	LastError     string        `json:"last_error,omitempty"`
	ErrorClass    string        `json:"error_class,omitempty"`
	DiscoveredAt  time.Time     `json:"discovered_at"`
	FetchedAt     *time.Time    `json:"fetched_at,omitempty"`
	Page          *PageInfoJSON `json:"page,omitempty"`
	Outlinks      []LinkJSON    `json:"outlinks"`
	Links         []string      `json:"links"`
	Inlinks       []LinkJSON    `json:"inlinks"`
	MoreInlinks   bool          `json:"more_inlinks,omitempty"`
	History       []FetchJSON   `json:"history"`
}

// PageInfoJSON is a URL's stored latest fetch.
type PageInfoJSON struct {
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

// LinkJSON is a URL at one end of a link.
type LinkJSON struct {
	URLID  int64  `json:"url_id"`
	URL    string `json:"url"`
	State  string `json:"state"`
	Status int    `json:"status,omitempty"`
	Title  string `json:"title,omitempty"`
}

// FetchJSON is one fetch attempt, in a page's history.
type FetchJSON struct {
	FetchedAt   time.Time `json:"fetched_at"`
	Status      int       `json:"status,omitempty"`
	DurationMS  int       `json:"duration_ms"`
	Size        int       `json:"size"`
	ContentHash string    `json:"content_hash,omitempty"`
	Changed     bool      `json:"changed"`
	New         bool      `json:"new,omitempty"` // the fetch that stored the URL's first content
	ErrorClass  string    `json:"error_class,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func toPageDetailJSON(d store.PageDetail) PageDetailJSON {
	out := PageDetailJSON{URLID: d.URLID, TargetID: d.TargetID, URL: d.URL, Host: d.Host, Depth: d.Depth, State: d.State,
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastError: d.LastError, ErrorClass: d.ErrorClass,
		DiscoveredAt: d.DiscoveredAt, FetchedAt: d.FetchedAt, Outlinks: mapJSON(d.Outlinks, toLinkJSON), Links: d.Links,
		Inlinks: mapJSON(d.Inlinks, toLinkJSON), MoreInlinks: d.MoreInlinks, History: mapJSON(d.History, toFetchJSON)}
	if p := d.Page; p != nil {
		out.Page = &PageInfoJSON{FinalURL: p.FinalURL, Status: p.Status, ContentType: p.ContentType, Title: p.Title,
			Size: p.Size, Truncated: p.Truncated, DurationMS: p.DurationMS, LinkCount: p.LinkCount,
			ContentHash: p.ContentHash, ETag: p.ETag, LastModified: httpDate(p.LastModified), FetchedAt: p.FetchedAt, StoredAt: p.StoredAt}
	}
	return out
}

func toLinkJSON(l store.LinkRow) LinkJSON {
	return LinkJSON{URLID: l.URLID, URL: l.URL, State: l.State, Status: l.Status, Title: l.Title}
}

func toFetchJSON(f store.Fetch) FetchJSON {
	return FetchJSON{FetchedAt: f.FetchedAt, Status: f.Status, DurationMS: f.DurationMS, Size: f.Size,
		ContentHash: f.ContentHash, Changed: f.Changed, New: f.New, ErrorClass: f.ErrorClass, Error: f.Error}
}

// URLJSON is a URL waiting for a retry or failed for good, in /api/retries and /api/failed.
type URLJSON struct {
	URLID         int64      `json:"url_id"`
	TargetID      int64      `json:"target_id"`
	URL           string     `json:"url"`
	Host          string     `json:"host"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	ErrorClass    string     `json:"error_class,omitempty"`
	FetchedAt     *time.Time `json:"fetched_at,omitempty"`
}

func toURLListJSON(l store.URLList) ListJSON[URLJSON] {
	return toListJSON(l.Rows, l.PrevCursor, l.NextCursor, func(r store.URLRowInfo) URLJSON {
		return URLJSON{URLID: r.URLID, TargetID: r.TargetID, URL: r.URL, Host: r.Host, Attempts: r.Attempts,
			NextAttemptAt: r.NextAttemptAt, LastStatus: r.LastStatus, LastError: r.LastError, ErrorClass: r.ErrorClass,
			FetchedAt: r.FetchedAt}
	})
}

// DeadLetterJSON is a dead letter in /api/dead-letters. Its body and fingerprint are not shown.
type DeadLetterJSON struct {
	ID            int64           `json:"id"`
	Reason        string          `json:"reason"`
	OriginalQueue string          `json:"original_queue"`
	Exchange      string          `json:"exchange"`
	RoutingKey    string          `json:"routing_key"`
	MessageType   string          `json:"message_type"`
	TargetID      *int64          `json:"target_id,omitempty"`
	Host          string          `json:"host,omitempty"`
	URL           string          `json:"url,omitempty"`
	ErrorClass    string          `json:"error_class,omitempty"`
	Summary       string          `json:"summary"`
	Size          int             `json:"size"`
	Count         int64           `json:"count"`
	Requeues      int             `json:"requeues"`
	DeadAt        time.Time       `json:"dead_at"`
	MessageID     string          `json:"message_id,omitempty"`
	ContentType   string          `json:"content_type,omitempty"`
	Headers       json.RawMessage `json:"headers,omitempty"`
}

func toDeadLetterJSON(d store.DeadLetter) DeadLetterJSON {
	return DeadLetterJSON{ID: d.ID, Reason: d.Reason, OriginalQueue: d.OriginalQueue, Exchange: d.Exchange,
		RoutingKey: d.RoutingKey, MessageType: d.MessageType, TargetID: d.TargetID, Host: d.Host, URL: d.URL,
		ErrorClass: d.ErrorClass, Summary: d.Summary, Size: d.Size, Count: d.Count, Requeues: d.Requeues,
		DeadAt: d.DeadAt, MessageID: d.MessageID, ContentType: d.ContentType, Headers: d.Headers}
}

// HostJSON is one host of a target, in /api/targets/:id/hosts, with its politeness state and
// counts, shared by all targets.
type HostJSON struct {
	Host            string     `json:"host"`
	NextFetchAt     time.Time  `json:"next_fetch_at"`
	MinIntervalMS   int        `json:"min_interval_ms"`
	CrawlDelayMS    int        `json:"crawl_delay_ms"`
	BackoffUntil    *time.Time `json:"backoff_until,omitempty"`
	RobotsStatus    *int       `json:"robots_status,omitempty"`
	RobotsFetchedAt *time.Time `json:"robots_fetched_at,omitempty"`
	InFlight        int64      `json:"in_flight"`
	Fetches         int64      `json:"fetches"`
	Errors          int64      `json:"errors"`
}

func toHostListJSON(l store.HostList) ListJSON[HostJSON] {
	return toListJSON(l.Rows, "", l.NextCursor, func(h store.HostState) HostJSON {
		return HostJSON{Host: h.Host, NextFetchAt: h.NextFetchAt, MinIntervalMS: h.MinIntervalMS,
			CrawlDelayMS: h.CrawlDelayMS, BackoffUntil: h.BackoffUntil, RobotsStatus: h.RobotsStatus,
			RobotsFetchedAt: h.RobotsFetchedAt, InFlight: h.InFlight, Fetches: h.Fetches, Errors: h.Errors}
	})
}

// ErrorGroupJSON is one error class of a target's URLs, in /api/targets/:id/errors.
type ErrorGroupJSON struct {
	Class        string    `json:"class"`
	Count        int64     `json:"count"`
	SampleURLID  int64     `json:"sample_url_id"`
	SampleURL    string    `json:"sample_url"`
	SampleError  string    `json:"sample_error,omitempty"`
	SampleStatus int       `json:"sample_status,omitempty"`
	LastSeen     time.Time `json:"last_seen"`
}

func toErrorGroupJSON(g store.ErrorGroup) ErrorGroupJSON {
	return ErrorGroupJSON{Class: g.Class, Count: g.Count, SampleURLID: g.SampleURLID, SampleURL: g.SampleURL,
		SampleError: g.SampleError, SampleStatus: g.SampleStatus, LastSeen: g.LastSeen}
}

// PageRowJSON is a stored page in a listing, in /api/targets/:id/pages.
type PageRowJSON struct {
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

func toPageListJSON(l store.PageList) ListJSON[PageRowJSON] {
	return toListJSON(l.Rows, l.PrevCursor, l.NextCursor, func(r store.PageRow) PageRowJSON {
		return PageRowJSON{URLID: r.URLID, TargetID: r.TargetID, URL: r.URL, Status: r.Status,
			ContentType: r.ContentType, Title: r.Title, Size: r.Size, DurationMS: r.DurationMS, FetchedAt: r.FetchedAt}
	})
}

// ExportRowJSON is one line of /api/targets/:id/export.jsonl. The CSV export can write the
// same columns (CSVColumns), in the same order; by default it leaves out the text.
type ExportRowJSON struct {
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

func toExportRowJSON(r store.ExportRow) ExportRowJSON {
	return ExportRowJSON{URLID: r.URLID, URL: r.URL, FinalURL: r.FinalURL, Depth: r.Depth, Status: r.Status,
		ContentType: r.ContentType, Title: r.Title, Size: r.Size, Truncated: r.Truncated, DurationMS: r.DurationMS,
		LinkCount: r.LinkCount, ContentHash: r.ContentHash, ETag: r.ETag, LastModified: httpDate(r.LastModified),
		FetchedAt: r.FetchedAt, Text: r.Text}
}

// RecrawlReplyJSON is a crawler's answer to a re-crawl, as POST /api/pages/{id}/recrawl sends
// it: the reply message's envelope and fields.
type RecrawlReplyJSON struct {
	Type        string    `json:"type"`
	V           int       `json:"v"`
	ID          string    `json:"id"`
	TS          time.Time `json:"ts"`
	RequestID   string    `json:"request_id"`
	URLID       int64     `json:"url_id"`
	Worker      string    `json:"worker"`
	Status      int       `json:"status,omitempty"`
	DurationMS  int       `json:"duration_ms"`
	Changed     bool      `json:"changed"`
	Error       string    `json:"error,omitempty"`
	Fetched     bool      `json:"fetched"`
	ContentHash string    `json:"content_hash,omitempty"`
}

func toRecrawlReplyJSON(r message.RecrawlReply) RecrawlReplyJSON {
	return RecrawlReplyJSON{Type: r.Type, V: r.V, ID: r.ID, TS: r.TS, RequestID: r.RequestID, URLID: r.URLID,
		Worker: r.Worker, Status: r.Status, DurationMS: r.DurationMS, Changed: r.Changed, Error: r.Error,
		Fetched: r.Fetched, ContentHash: r.ContentHash}
}

// WorkerJSON is one live worker in GET /api/workers: its last heartbeat, when it came, and
// its rate. The heartbeat's envelope (type, version, message id) is the message's, not the
// worker's, and is left out; ts is when the worker sent the heartbeat, by its clock.
type WorkerJSON struct {
	TS          time.Time `json:"ts"`
	WorkerID    string    `json:"worker_id"`
	Kind        string    `json:"kind"`
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	Concurrency int       `json:"concurrency"`
	InFlight    int64     `json:"in_flight"`
	Processed   int64     `json:"processed"`
	StartedAt   time.Time `json:"started_at"`
	IntervalMS  int64     `json:"interval_ms"`
	Scheduler   bool      `json:"scheduler,omitempty"`
	// RSSBytes is the worker's resident memory; absent when it does not say (an older worker).
	RSSBytes int64 `json:"rss_bytes,omitempty"`
	// PagesPerSec is fetches finished (crawler) or results persisted (processor) per second
	// between its last two heartbeats; absent until there are two.
	PagesPerSec *float64  `json:"pages_per_sec,omitempty"`
	LastSeen    time.Time `json:"last_seen"`
}

func toWorkerJSON(w WorkerInfo) WorkerJSON {
	out := WorkerJSON{TS: w.TS, WorkerID: w.WorkerID, Kind: w.Kind, Host: w.Host,
		Version: w.Version, Concurrency: w.Concurrency, InFlight: w.InFlight, Processed: w.Processed,
		StartedAt: w.StartedAt, IntervalMS: w.IntervalMS, Scheduler: w.Scheduler, RSSBytes: w.RSSBytes,
		LastSeen: w.LastSeen}
	if w.HasRate {
		out.PagesPerSec = &w.Rate
	}
	return out
}
