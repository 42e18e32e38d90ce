// Package recrawl re-crawls one URL on request, over RPC to any crawler, and makes a resend
// with the same request id never cause a second fetch, whichever crawler it would reach.
//
// The authoritative dedup lives with the caller, in Postgres (table recrawl_requests). For a
// request id, Service.Recrawl:
//
//   - new id: claims it (state pending, attempt 1), leases the URL so the processor applies the
//     result, and publishes the request. Only the claimer publishes.
//   - pending, claimed less than Lease ago: does not publish; it polls the row until the
//     outcome is stored or its Timeout passes.
//   - pending, claimed Lease ago or more (the caller died, or no crawler answered): claims it
//     again (attempt n+1) and publishes again. Every request carries a Deadline of claim time +
//     Lease/2, and a crawler never starts a fetch after it, so an earlier attempt can no longer
//     fetch once a retry is allowed, as long as the fetch timeout is under Lease/2 and clocks
//     agree to well within the remaining margin.
//   - done: returns the stored reply; nothing is published.
//   - failed (certainly not fetched: the broker refused the request, or the crawler found it
//     expired): claims it again at once.
//
// When the caller's wait ends first, the request stays pending and the call goes on in the
// background until Lease: a reply that arrives then is stored, and a resend returns it.
package recrawl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// Errors of Recrawl, besides the store's (store.ErrNotFound for an unknown URL,
// store.ErrRecrawlConflict for a request id reused for another URL).
var (
	// ErrPending means no outcome arrived within the wait; the request stays pending and its
	// reply is stored when it arrives. Resend the same request id to get it.
	ErrPending = errors.New("recrawl: no reply yet")
	// ErrNotFetched means the request certainly did not cause a fetch; a resend may retry it.
	ErrNotFetched = errors.New("recrawl: not fetched")
	// ErrInvalid is bad input: an empty or too long request id, or a non-positive URL id.
	ErrInvalid = errors.New("recrawl: invalid request")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("recrawl: service closed")
)

// Store is the request record in the database.
type Store interface {
	ClaimRecrawl(ctx context.Context, requestID string, urlID int64, lease time.Duration) (store.RecrawlClaim, error)
	RecrawlRequest(ctx context.Context, requestID string) (store.RecrawlRequest, error)
	FinishRecrawl(ctx context.Context, requestID string, reply json.RawMessage) (bool, error)
	FailRecrawl(ctx context.Context, requestID string, attempt int, reason string) (bool, error)
}

// Client sends one request to a crawler and waits for its reply. *pipeline.RPCClient
// implements it.
type Client interface {
	Call(ctx context.Context, req message.RecrawlRequest) (message.RecrawlReply, error)
}

// claimTimeout bounds the claim's transaction when Timeout is shorter.
const claimTimeout = 10 * time.Second

// Defaults of the Service's zero fields.
const (
	DefaultTimeout = 15 * time.Second
	DefaultLease   = 2 * time.Minute
	DefaultPoll    = 100 * time.Millisecond
)

// Service re-crawls URLs with request-id dedup. The zero values of Timeout, Lease, Poll and Log
// mean the defaults. Call Close at shutdown to stop background waits.
type Service struct {
	Store   Store
	Client  Client
	Timeout time.Duration // how long Recrawl waits for an outcome
	Lease   time.Duration // after how long a pending request may be sent again
	Poll    time.Duration // how often a resend of a pending request checks for its outcome
	Log     *slog.Logger

	once   sync.Once
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

func (s *Service) init() {
	s.once.Do(func() { s.bg, s.cancel = context.WithCancel(context.Background()) })
}

func (s *Service) timeout() time.Duration { return cmpOr(s.Timeout, DefaultTimeout) }
func (s *Service) lease() time.Duration   { return cmpOr(s.Lease, DefaultLease) }
func (s *Service) poll() time.Duration    { return cmpOr(s.Poll, DefaultPoll) }

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Recrawl fetches urlID again through any crawler, at most once per requestID, and returns the
// crawler's reply: status, duration, changed or not. It waits at most Timeout (or until ctx
// ends); then it returns ErrPending and the outcome is stored when it arrives.
func (s *Service) Recrawl(ctx context.Context, requestID string, urlID int64) (message.RecrawlReply, error) {
	if requestID == "" || len(requestID) > 200 {
		return message.RecrawlReply{}, fmt.Errorf("%w: request id must be 1 to 200 bytes", ErrInvalid)
	}
	if urlID <= 0 {
		return message.RecrawlReply{}, fmt.Errorf("%w: url id must be positive, got %d", ErrInvalid, urlID)
	}
	s.init()
	wait := s.timeout()
	// The claim is one short transaction: it gets its own bound, so that a short wait on a busy
	// database does not fail the request before anything was asked of a crawler.
	claimCtx, cancelClaim := context.WithTimeout(ctx, max(wait, claimTimeout))
	claim, err := s.Store.ClaimRecrawl(claimCtx, requestID, urlID, s.lease())
	cancelClaim()
	if err != nil {
		return message.RecrawlReply{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if !claim.Claimed {
		return s.outcome(ctx, claim.Request, wait)
	}
	done, err := s.send(requestID, claim)
	if err != nil {
		return message.RecrawlReply{}, err
	}
	select {
	case o := <-done:
		return o.reply, o.err
	case <-ctx.Done():
		return message.RecrawlReply{}, fmt.Errorf("%w: request %s: no crawler replied within %s; it stays pending and its reply is stored when it arrives (resend the same request id to see it)",
			ErrPending, requestID, wait)
	}
}

type outcome struct {
	reply message.RecrawlReply
	err   error
}

// send publishes the claimed request and records its outcome in the background, up to Lease,
// so that a reply arriving after the caller stopped waiting is still stored.
func (s *Service) send(requestID string, claim store.RecrawlClaim) (<-chan outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	lease := s.lease()
	req := message.RecrawlRequest{
		Envelope:  message.NewEnvelope(message.TypeRecrawlRequest),
		RequestID: requestID, URLID: claim.URL.URLID, TargetID: claim.URL.TargetID, URL: claim.URL.URL,
		Depth: claim.URL.Depth, ETag: claim.URL.ETag, LastModified: claim.URL.LastModified,
		ContentHash: claim.URL.ContentHash,
		// The database's claim time, so that the deadline and the lease share one clock.
		Deadline: claim.Request.UpdatedAt.Add(lease / 2),
	}
	attempt := claim.Request.Attempts
	done := make(chan outcome, 1)
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.bg, lease)
		defer cancel()
		reply, err := s.Client.Call(ctx, req)
		done <- s.record(requestID, attempt, reply, err)
	})
	return done, nil
}

// record stores the outcome of one attempt and says what the caller gets.
func (s *Service) record(requestID string, attempt int, reply message.RecrawlReply, callErr error) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := s.log().With("request_id", requestID, "attempt", attempt)
	switch {
	case callErr == nil && reply.Fetched:
		body, err := json.Marshal(reply)
		if err == nil {
			_, err = s.Store.FinishRecrawl(ctx, requestID, body)
		}
		if err != nil {
			log.Error("re-crawl reply not stored; a resend will wait for the lease and fetch again", "err", err)
		}
		return outcome{reply: reply}
	case callErr == nil:
		if _, err := s.Store.FailRecrawl(ctx, requestID, attempt, reply.Error); err != nil {
			log.Error("re-crawl failure not stored", "err", err)
		}
		return outcome{reply: reply, err: fmt.Errorf("%w: request %s: %s", ErrNotFetched, requestID, reply.Error)}
	case errors.Is(callErr, pipeline.ErrNotSent):
		if _, err := s.Store.FailRecrawl(ctx, requestID, attempt, callErr.Error()); err != nil {
			log.Error("re-crawl failure not stored", "err", err)
		}
		return outcome{err: fmt.Errorf("%w: request %s: %w", ErrNotFetched, requestID, callErr)}
	default:
		// Timed out or the reply's channel was lost: the request may still be fetched. It stays
		// pending; after the lease a resend tries again.
		log.Warn("re-crawl request left pending", "err", callErr)
		return outcome{err: fmt.Errorf("%w: request %s: %w", ErrPending, requestID, callErr)}
	}
}

// outcome answers a resend that did not claim the request: the stored reply, or the outcome
// of the pending attempt once it is stored.
func (s *Service) outcome(ctx context.Context, r store.RecrawlRequest, wait time.Duration) (message.RecrawlReply, error) {
	t := time.NewTicker(s.poll())
	defer t.Stop()
	for {
		switch r.State {
		case store.RecrawlDone:
			var reply message.RecrawlReply
			if err := json.Unmarshal(r.Reply, &reply); err != nil {
				return reply, fmt.Errorf("recrawl: stored reply of %s: %w", r.RequestID, err)
			}
			return reply, nil
		case store.RecrawlFailed:
			return message.RecrawlReply{}, fmt.Errorf("%w: request %s: %s", ErrNotFetched, r.RequestID, r.Error)
		}
		select {
		case <-ctx.Done():
			return message.RecrawlReply{}, fmt.Errorf("%w: request %s: sent %s ago (attempt %d) and still waiting for a crawler after %s",
				ErrPending, r.RequestID, time.Since(r.UpdatedAt).Round(time.Second), r.Attempts, wait)
		case <-t.C:
		}
		next, err := s.Store.RecrawlRequest(ctx, r.RequestID)
		if err != nil {
			if ctx.Err() != nil {
				continue // reported as pending above
			}
			return message.RecrawlReply{}, err
		}
		r = next
	}
}

// Close stops waiting for outstanding replies (their requests stay pending) and waits for the
// background work to end. Safe to call more than once.
func (s *Service) Close() {
	s.init()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
