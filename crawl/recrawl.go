package crawl

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
)

// Replier sends an RPC reply to the caller's reply_to address. *pipeline.Publisher implements it.
type Replier interface {
	Reply(ctx context.Context, replyTo, correlationID string, reply message.RecrawlReply) error
}

// RecrawlServer answers re-crawl RPC requests: it fetches the URL at once (conditionally, with
// the request's ETag and Last-Modified), publishes the FetchResult to the pages exchange and
// waits for the broker's confirm, so the processor stores it like any fetch, and then replies
// with the status, the duration and whether the content changed.
//
// It remembers the outcome of its recent requests by request id (an LRU of CacheSize entries):
// a redelivery or a resend of a request this crawler has seen never fetches again. It is
// answered from memory, and a result whose publish failed is published from memory. Dedup
// across crawlers is the caller's job (see package recrawl).
type RecrawlServer struct {
	Fetcher     *Fetcher
	Pub         Publisher
	Replies     Replier
	Topology    pipeline.Topology
	Concurrency int
	CacheSize   int // default 4096
	ID          string
	Log         *slog.Logger
	// Now is the clock for request deadlines; nil means time.Now.
	Now func() time.Time

	once    sync.Once
	mu      sync.Mutex
	order   *list.List // of *recrawlEntry, most recent first
	entries map[string]*list.Element

	fetches atomic.Int64
	served  atomic.Int64
}

// recrawlEntry is what this crawler knows about one request id. lock is a one-slot semaphore
// held while the request is being worked on, so a concurrent redelivery waits for the outcome.
type recrawlEntry struct {
	id     string
	lock   chan struct{}
	result *message.FetchResult // set once fetched
	sent   bool                 // result confirmed by the broker
	reply  *message.RecrawlReply
}

// Fetches is how many fetches this server has made.
func (s *RecrawlServer) Fetches() int64 { return s.fetches.Load() }

// Served is how many requests this server has answered or tried to answer (replies from
// memory included).
func (s *RecrawlServer) Served() int64 { return s.served.Load() }

// Serve works request deliveries with Concurrency goroutines until the stream closes. When stop
// is closed, requests not yet started are returned to the queue.
func (s *RecrawlServer) Serve(workCtx context.Context, stop <-chan struct{}, deliveries pipeline.Deliveries) {
	serve(s.Concurrency, stop, deliveries, func(d pipeline.Delivery) { s.handle(workCtx, d) },
		func(d pipeline.Delivery) { _ = d.Requeue() })
}

func (s *RecrawlServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// entry returns the cache entry of id, creating it (and evicting the oldest) when new.
func (s *RecrawlServer) entry(id string) *recrawlEntry {
	s.once.Do(func() {
		s.order = list.New()
		s.entries = map[string]*list.Element{}
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[id]; ok {
		s.order.MoveToFront(el)
		return el.Value.(*recrawlEntry)
	}
	e := &recrawlEntry{id: id, lock: make(chan struct{}, 1)}
	s.entries[id] = s.order.PushFront(e)
	size := s.CacheSize
	if size <= 0 {
		size = 4096
	}
	for s.order.Len() > size {
		old := s.order.Back()
		s.order.Remove(old)
		delete(s.entries, old.Value.(*recrawlEntry).id)
	}
	return e
}

// forget drops e from the cache, so a later request with its id is worked afresh.
func (s *RecrawlServer) forget(e *recrawlEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.entries[e.id]; ok && el.Value == e {
		s.order.Remove(el)
		delete(s.entries, e.id)
	}
}

func (s *RecrawlServer) handle(ctx context.Context, d pipeline.Delivery) {
	req, err := message.DecodeRecrawlRequest(d.Body)
	if err != nil {
		s.Log.Error("poison re-crawl request dead-lettered", "err", err, "bytes", len(d.Body))
		_ = d.Reject(false)
		return
	}
	e := s.entry(req.RequestID)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		_ = d.Requeue()
		return
	}
	defer func() { <-e.lock }()

	if e.reply == nil {
		reply, ok := s.work(ctx, e, req)
		if !ok {
			// The result is not confirmed: the request goes back to the queue. If it comes
			// back here, the remembered result is published without fetching again.
			if err := d.Requeue(); err != nil {
				s.Log.Debug("nack failed", "err", err)
			}
			return
		}
		e.reply = &reply
		if !reply.Fetched {
			// Nothing was fetched: a later attempt with this id must be free to fetch.
			s.forget(e)
		}
	} else {
		s.Log.Info("re-crawl request seen before; answering from memory", "request_id", req.RequestID)
	}
	reply := *e.reply
	reply.Envelope = message.NewEnvelope(message.TypeRecrawlReply)
	s.served.Add(1)
	if d.ReplyTo != "" {
		if err := s.Replies.Reply(ctx, d.ReplyTo, d.CorrelationID, reply); err != nil {
			// The fetch is done and its result stored; a caller that still waits will time out,
			// and a resend is answered from memory (or by the caller's own record).
			s.Log.Warn("re-crawl reply not delivered", "err", err, "request_id", req.RequestID)
		}
	}
	if err := d.Ack(false); err != nil {
		s.Log.Warn("ack failed; the request will be redelivered and answered from memory", "err", err, "request_id", req.RequestID)
	}
}

// work fetches (unless a result is remembered) and publishes the result; ok is false when the
// broker did not confirm the result.
func (s *RecrawlServer) work(ctx context.Context, e *recrawlEntry, req message.RecrawlRequest) (message.RecrawlReply, bool) {
	reply := message.RecrawlReply{RequestID: req.RequestID, URLID: req.URLID, Worker: s.ID}
	if e.result == nil {
		if !req.Deadline.IsZero() && s.now().After(req.Deadline) {
			reply.Error = fmt.Sprintf("request expired at %s before a crawler took it; not fetched", req.Deadline.UTC().Format(time.RFC3339))
			s.Log.Warn("expired re-crawl request not fetched", "request_id", req.RequestID, "deadline", req.Deadline)
			return reply, true
		}
		job := message.CrawlJob{Kind: message.KindPage, URLID: req.URLID, TargetID: req.TargetID, URL: req.URL,
			Depth: req.Depth, ETag: req.ETag, LastModified: req.LastModified}
		res := s.Fetcher.Fetch(job, s.ID)
		s.fetches.Add(1)
		metrics.ObserveFetch(res.Status, res.Error != "", res.ErrorClass, time.Duration(res.DurationMS)*time.Millisecond, res.Size)
		if res.Status == http.StatusNotModified {
			// A 304 has no body: the content is the one the request describes, not the hash of
			// an empty body, and the validators stay unless the server sent new ones.
			res.ContentHash = req.ContentHash
			res.ETag = cmp.Or(res.ETag, req.ETag)
			res.LastModified = cmp.Or(res.LastModified, req.LastModified)
		}
		e.result = &res
	}
	res := e.result
	if !e.sent {
		body, err := message.EncodeFetchResult(*res)
		if err == nil {
			err = s.Pub.Publish(ctx, s.Topology.PagesExchange(), pipeline.KeyPage,
				message.Encoded{ID: res.ID, Type: message.TypeFetchResult, Body: body})
		}
		if err != nil {
			s.Log.Warn("re-crawl result not confirmed; request returned to queue", "err", err, "url", req.URL)
			return reply, false
		}
		e.sent = true
	}
	reply.Fetched = true
	reply.Status = res.Status
	reply.DurationMS = res.DurationMS
	reply.ContentHash = res.ContentHash
	reply.Error = res.Error
	reply.Changed = res.Error == "" && res.Status != http.StatusNotModified &&
		(req.ContentHash == "" || res.ContentHash != req.ContentHash)
	s.Log.Info("re-crawled", "request_id", req.RequestID, "url", req.URL, "status", res.Status,
		"changed", reply.Changed, "duration_ms", res.DurationMS, "err", res.Error)
	return reply, true
}
