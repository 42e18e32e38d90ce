package message

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrPermanent marks a failure that retrying cannot fix: the message is dead-lettered at once.
var ErrPermanent = errors.New("permanent failure")

// Message types and their current versions.
const (
	TypeCrawlJob    = "crawl.job"
	TypeCrawlJobs   = "crawl.jobs" // several crawl jobs in one message (CrawlJobs)
	TypeFetchResult = "fetch.result"
	TypeHeartbeat   = "worker.heartbeat"

	// Version is the schema version written into every message.
	Version = 1
)

// Job kinds.
const (
	KindPage    = "page"
	KindRobots  = "robots"
	KindSitemap = "sitemap" // URLID is the sitemap's id
)

// IsPageKind reports whether a job or result of kind is a page's: anything but robots.txt and
// sitemaps, which have their own stores. Only pages' results share a message (PackResults).
func IsPageKind(kind string) bool { return kind != KindRobots && kind != KindSitemap }

// Envelope is the common head of every message.
type Envelope struct {
	Type string    `json:"type"`
	V    int       `json:"v"`
	ID   string    `json:"id"`
	TS   time.Time `json:"ts"`
}

// NewEnvelope stamps a new message of type typ with a fresh id and the current time.
func NewEnvelope(typ string) Envelope {
	return Envelope{Type: typ, V: Version, ID: NewID(), TS: time.Now().UTC()}
}

// NewID returns a random 128-bit identifier in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// CrawlJob asks a crawler to fetch one URL. The scheduler publishes it after leasing the URL.
type CrawlJob struct {
	Envelope
	Kind         string `json:"kind"`
	URLID        int64  `json:"url_id"`
	TargetID     int64  `json:"target_id"`
	URL          string `json:"url"`
	Depth        int    `json:"depth"`
	Dispatch     int    `json:"dispatch"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// LeaseUntil, when set, is when the URL's lease ran out: a crawler that takes the job later
	// skips it, because the URL has been (or is about to be) dispatched again. Zero for jobs
	// without a lease (robots.txt, sitemaps, re-crawl RPCs) and from older schedulers.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// IntervalMS and DelayMS pace a host with a rate limit: the job is one of the host's next
	// slots. A crawler starts it no sooner than DelayMS after it receives the job (a duration
	// on its own monotonic clock, so that neither clock skew nor time in the queue can bring it
	// forward), and starts the jobs of one message that have an IntervalMS one after another,
	// each at least IntervalMS after the previous one started and never while the previous one
	// runs. The scheduler sends a host's slots in one message of their own. Zero for hosts
	// without a rate limit and from older schedulers; crawlers older than these fields fetch at
	// once (CHANGELOG.md, upgrade notes).
	IntervalMS int   `json:"interval_ms,omitempty"`
	DelayMS    int64 `json:"delay_ms,omitempty"`
}

// Paced reports whether the job is a slot of a host with a rate limit.
func (j CrawlJob) Paced() bool { return j.IntervalMS > 0 }

// CrawlJobs carries several crawl jobs in one message. The broker's cost of a message hardly
// depends on its size, so the scheduler packs the jobs of one dispatch into messages of up to a
// few jobs each (docs/adr/0043-several-jobs-and-results-per-message.md). A crawler fetches
// them independently and settles the message once all of them have ended.
type CrawlJobs struct {
	Envelope
	Jobs []CrawlJob `json:"jobs"`
}

// MaxJobsPerMessage is the most jobs a CrawlJobs message may carry; a crawler refuses (dead-
// letters) a larger one.
const MaxJobsPerMessage = 64

// DecodeJobs decodes a crawl queue message: one CrawlJob, or several when typ (the message's
// AMQP type property) is TypeCrawlJobs. Every failure wraps ErrPermanent.
func DecodeJobs(body []byte, typ string) ([]CrawlJob, error) {
	if typ != TypeCrawlJobs {
		var job CrawlJob
		if err := Decode(body, TypeCrawlJob, &job); err != nil {
			return nil, err
		}
		return []CrawlJob{job}, nil
	}
	var b CrawlJobs
	if err := Decode(body, TypeCrawlJobs, &b); err != nil {
		return nil, err
	}
	if len(b.Jobs) == 0 || len(b.Jobs) > MaxJobsPerMessage {
		return nil, fmt.Errorf("message: decode %s: %w: %d jobs, want 1 to %d", typ, ErrPermanent, len(b.Jobs), MaxJobsPerMessage)
	}
	for i, j := range b.Jobs {
		if j.Type != TypeCrawlJob || j.V != Version || j.ID == "" {
			return nil, fmt.Errorf("message: decode %s: %w: job %d has type %q, version %d, id %q", typ, ErrPermanent, i, j.Type, j.V, j.ID)
		}
	}
	return b.Jobs, nil
}

// JobMessages encodes jobs as crawl queue messages of at most perMessage jobs each, spread
// evenly (10 jobs at 8 per message make two messages of 5). A message of one job is a plain
// CrawlJob, which every crawler version reads.
func JobMessages(jobs []CrawlJob, perMessage int) ([]Encoded, error) {
	perMessage = min(max(perMessage, 1), MaxJobsPerMessage)
	n := (len(jobs) + perMessage - 1) / perMessage
	msgs := make([]Encoded, 0, n)
	for i := range n {
		chunk := jobs[i*len(jobs)/n : (i+1)*len(jobs)/n]
		var m any = chunk[0]
		id, typ := chunk[0].ID, TypeCrawlJob
		if len(chunk) > 1 {
			b := CrawlJobs{Envelope: NewEnvelope(TypeCrawlJobs), Jobs: chunk}
			m, id, typ = b, b.ID, TypeCrawlJobs
		}
		body, err := Encode(m)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, Encoded{ID: id, Type: typ, Body: body})
	}
	return msgs, nil
}

// FetchResult reports one fetch: a page (any HTTP status) or an error without a response.
type FetchResult struct {
	Envelope
	Kind     string `json:"kind"`
	URLID    int64  `json:"url_id"`
	TargetID int64  `json:"target_id"`
	URL      string `json:"url"`
	Depth    int    `json:"depth"`
	Dispatch int    `json:"dispatch"`
	Worker   string `json:"worker"`
	// Agent is the crawler's User-Agent (robots jobs: the rules are read for its product token).
	Agent string `json:"agent,omitempty"`
	// Sitemaps are the children of a sitemap index (sitemap jobs only).
	Sitemaps []string `json:"sitemaps,omitempty"`

	FinalURL     string   `json:"final_url,omitempty"`
	Status       int      `json:"status,omitempty"`
	ContentType  string   `json:"content_type,omitempty"`
	Title        string   `json:"title,omitempty"`
	Text         string   `json:"text,omitempty"`
	Links        []string `json:"links,omitempty"`
	ETag         string   `json:"etag,omitempty"`
	LastModified string   `json:"last_modified,omitempty"`
	ContentHash  string   `json:"content_hash,omitempty"`
	Size         int      `json:"size,omitempty"`
	Truncated    bool     `json:"truncated,omitempty"`
	// NoFollow: the page's robots meta tags or X-Robots-Tag header say nofollow (or none), so
	// its links are recorded as edges but not added to the frontier.
	NoFollow    bool      `json:"nofollow,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	DurationMS  int       `json:"duration_ms"`
	RetryAfterS int       `json:"retry_after_s,omitempty"`

	// Error is set when the fetch failed without a usable response.
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	// Permanent marks an error that must not be retried (for example a refused address).
	Permanent bool `json:"permanent,omitempty"`
}

// Heartbeat is published by every worker on the events exchange.
//
// Fields added after version 1 was first published are optional, so that workers and dashboards
// of different releases can run side by side without a version bump: an older worker leaves
// them out (they decode as zero, which readers show as unknown), and an older reader skips them
// (encoding/json ignores unknown fields). RSSBytes is one.
type Heartbeat struct {
	Envelope
	WorkerID    string    `json:"worker_id"`
	Kind        string    `json:"kind"`
	Host        string    `json:"host"`
	Version     string    `json:"version"`
	Concurrency int       `json:"concurrency"`
	InFlight    int64     `json:"in_flight"`
	Processed   int64     `json:"processed"`
	StartedAt   time.Time `json:"started_at"`
	IntervalMS  int64     `json:"interval_ms"`
	// Scheduler is set by the processor that runs the scheduler now (one per database).
	Scheduler bool `json:"scheduler,omitempty"`
	// RSSBytes is the worker's resident set size when it sent the heartbeat (optional: 0 or
	// absent means unknown, as from a worker that predates it or cannot read its own).
	RSSBytes int64 `json:"rss_bytes,omitempty"`
}

// Encode marshals a message to JSON.
func Encode(msg any) ([]byte, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("message: encode: %w", err)
	}
	return b, nil
}

// MaxMessageBytes is the largest message body a worker accepts. It is RabbitMQ 4.x's default
// max_message_size (3.10 accepts up to 128 MiB): a larger message would be refused by a 4.x
// broker, so it is poison on any version. Fetch results stay far below it (text ≤ 1 MiB).
const MaxMessageBytes = 16 << 20

// MaxContentTypeBytes is the longest content type a fetch result carries: a server's header can be
// far longer than a Postgres index entry (the pages table indexes it), so it is cut.
const MaxContentTypeBytes = 255

// Decode unmarshals body, JSON or a frame (frame.go), into msg and checks its size, type and
// version. Every failure wraps ErrPermanent: a message that cannot be decoded now never will be.
func Decode(body []byte, typ string, msg interface{ envelope() *Envelope }) error {
	if len(body) > MaxMessageBytes {
		return fmt.Errorf("message: decode %s: %w: %d bytes, limit %d", typ, ErrPermanent, len(body), MaxMessageBytes)
	}
	data, block, framed := body, []byte(nil), isFrame(body)
	th, holdsText := msg.(textHolder)
	if framed {
		if !holdsText {
			return fmt.Errorf("message: decode %s: %w: a %s message is never a frame", typ, ErrPermanent, typ)
		}
		var err error
		if data, block, err = splitFrame(body); err != nil {
			return fmt.Errorf("message: decode %s: %w", typ, err)
		}
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return fmt.Errorf("message: decode %s: %w: %w", typ, ErrPermanent, err)
	}
	env := msg.envelope()
	if env.Type != typ {
		return fmt.Errorf("message: decode: %w: type %q, want %q", ErrPermanent, env.Type, typ)
	}
	if env.V != Version {
		return fmt.Errorf("message: decode %s: %w: unsupported version %d", typ, ErrPermanent, env.V)
	}
	if env.ID == "" {
		return fmt.Errorf("message: decode %s: %w: missing id", typ, ErrPermanent)
	}
	if framed && len(block) > 0 {
		text, err := frameText(block)
		if err != nil {
			return fmt.Errorf("message: decode %s: %w", typ, err)
		}
		*th.frameText() = text
	}
	return nil
}

func (e *Envelope) envelope() *Envelope { return e }

// Re-crawl RPC message types.
const (
	TypeRecrawlRequest = "recrawl.request"
	TypeRecrawlReply   = "recrawl.reply"
)

// RecrawlRequest asks any crawler to fetch one known URL at once (RPC over request/reply).
// RequestID is chosen by the caller; a resend with the same RequestID must never cause a
// second fetch.
type RecrawlRequest struct {
	Envelope
	RequestID    string `json:"request_id"`
	URLID        int64  `json:"url_id"`
	TargetID     int64  `json:"target_id"`
	URL          string `json:"url"`
	Depth        int    `json:"depth"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	ContentHash  string `json:"content_hash,omitempty"`
	// Deadline, when set, is the last moment a crawler may start the fetch. A crawler that takes
	// the request later replies without fetching (Fetched false), so a caller that retries an
	// expired request can never cause a second fetch from the first one.
	Deadline time.Time `json:"deadline,omitzero"`
}

// RecrawlReply answers a RecrawlRequest once the fetch result is confirmed by the broker.
type RecrawlReply struct {
	Envelope
	RequestID  string `json:"request_id"`
	URLID      int64  `json:"url_id"`
	Worker     string `json:"worker"`
	Status     int    `json:"status,omitempty"`
	DurationMS int    `json:"duration_ms"`
	// Changed is false when the server answered 304 or the content hash is unchanged.
	Changed bool   `json:"changed"`
	Error   string `json:"error,omitempty"`
	// Fetched is false when the crawler did not fetch at all (the request had expired); Error
	// then says why. A fetch that failed (DNS, timeout, ...) is Fetched with Error set.
	Fetched bool `json:"fetched"`
	// ContentHash is the fetched body's SHA-256, when there was a body.
	ContentHash string `json:"content_hash,omitempty"`
}

// Encoded is one encoded message, ready to publish: its id (the AMQP message id), its type
// and its body.
type Encoded struct {
	ID   string
	Type string
	Body []byte
}

// DecodeRecrawlRequest decodes a request body and checks the fields a crawler needs. Every
// failure wraps ErrPermanent.
func DecodeRecrawlRequest(body []byte) (RecrawlRequest, error) {
	var req RecrawlRequest
	if err := Decode(body, TypeRecrawlRequest, &req); err != nil {
		return req, err
	}
	if req.RequestID == "" {
		return req, fmt.Errorf("message: decode %s: %w: missing request_id", TypeRecrawlRequest, ErrPermanent)
	}
	if req.URL == "" || req.URLID <= 0 {
		return req, fmt.Errorf("message: decode %s: %w: missing url or url_id", TypeRecrawlRequest, ErrPermanent)
	}
	return req, nil
}
