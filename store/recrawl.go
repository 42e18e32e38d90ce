package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Re-crawl request states.
const (
	RecrawlPending = "pending"
	RecrawlDone    = "done"
	RecrawlFailed  = "failed"
)

// ErrRecrawlConflict is returned when a request id is reused for a different URL.
var ErrRecrawlConflict = errors.New("store: re-crawl request id already used for another url")

// RecrawlRequest is the caller-side record of one re-crawl RPC, keyed by its request id.
type RecrawlRequest struct {
	RequestID string
	URLID     int64
	State     string
	Attempts  int
	Reply     json.RawMessage // the crawler's reply, once done
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RecrawlURL is what a crawler needs to re-fetch a URL conditionally.
type RecrawlURL struct {
	URLID        int64
	TargetID     int64
	URL          string
	Depth        int
	ETag         string
	LastModified string
	ContentHash  string
}

// RecrawlClaim is the outcome of ClaimRecrawl. When Claimed, the caller must send the request
// (attempt number Request.Attempts); otherwise Request is the existing record to wait on or
// answer from.
type RecrawlClaim struct {
	Claimed bool
	Request RecrawlRequest
	URL     RecrawlURL
}

const recrawlColumns = `request_id, url_id, state, attempts, reply, error, created_at, updated_at`

func scanRecrawl(row pgx.Row) (RecrawlRequest, error) {
	var r RecrawlRequest
	var reply []byte
	err := row.Scan(&r.RequestID, &r.URLID, &r.State, &r.Attempts, &reply, &r.Error, &r.CreatedAt, &r.UpdatedAt)
	if len(reply) > 0 {
		r.Reply = reply
	}
	return r, err
}

// ClaimRecrawl records a re-crawl request for urlID under requestID, atomically. It claims the
// request (Claimed true) when the id is new, when its earlier attempt failed, or when it has
// been pending for longer than lease without an outcome; any other resend is not claimed and
// gets the existing record. A claim also leases the URL (state dispatched, lease_until now +
// lease) unless it is dispatched already, so the processor applies the re-crawl's result like
// any scheduled fetch; the URL's previous state is kept to be restored if the request is
// certainly never delivered. An unknown URL is ErrNotFound; a request id already used for another
// URL is ErrRecrawlConflict.
func (s *Store) ClaimRecrawl(ctx context.Context, requestID string, urlID int64, lease time.Duration) (RecrawlClaim, error) {
	if requestID == "" || len(requestID) > 200 {
		return RecrawlClaim{}, fmt.Errorf("store: claim re-crawl: request id must be 1 to 200 bytes, got %d", len(requestID))
	}
	var c RecrawlClaim
	leaseIv := fmt.Sprintf("%d milliseconds", lease.Milliseconds())
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c = RecrawlClaim{}
		var urlState string
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.target_id, u.url, u.depth, coalesce(u.etag, ''), coalesce(u.last_modified, ''),
			       coalesce(u.content_hash, ''), u.state
			FROM urls u WHERE u.id = $1
			  AND (SELECT t.state FROM targets t WHERE t.id = u.target_id) <> 'deleting'
			FOR UPDATE OF u`, urlID).Scan(
			&c.URL.URLID, &c.URL.TargetID, &c.URL.URL, &c.URL.Depth, &c.URL.ETag, &c.URL.LastModified,
			&c.URL.ContentHash, &urlState)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("url %d: %w", urlID, ErrNotFound) // or its target is being deleted
		}
		if err != nil {
			return fmt.Errorf("lock url: %w", err)
		}
		c.Request, err = scanRecrawl(tx.QueryRow(ctx, `
			INSERT INTO recrawl_requests (request_id, url_id) VALUES ($1, $2)
			ON CONFLICT (request_id) DO UPDATE SET
				state = 'pending', attempts = recrawl_requests.attempts + 1, reply = NULL, error = '',
				updated_at = now()
			WHERE recrawl_requests.url_id = EXCLUDED.url_id
			  AND (recrawl_requests.state = 'failed'
			       OR (recrawl_requests.state = 'pending' AND recrawl_requests.updated_at < now() - $3::interval))
			RETURNING `+recrawlColumns, requestID, urlID, leaseIv))
		if errors.Is(err, pgx.ErrNoRows) {
			c.Request, err = scanRecrawl(tx.QueryRow(ctx, `SELECT `+recrawlColumns+` FROM recrawl_requests WHERE request_id = $1`, requestID))
			if err != nil {
				return fmt.Errorf("read request: %w", err)
			}
			if c.Request.URLID != urlID {
				return fmt.Errorf("request %q is for url %d, not %d: %w", requestID, c.Request.URLID, urlID, ErrRecrawlConflict)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim request: %w", err)
		}
		c.Claimed = true
		if urlState == URLDispatched {
			return nil // a fetch is already leased; its lease covers the re-crawl's result too
		}
		if _, err := tx.Exec(ctx, `
			UPDATE urls SET state = 'dispatched', lease_until = now() + $2::interval, dispatches = dispatches + 1
			WHERE id = $1`, urlID, leaseIv); err != nil {
			return fmt.Errorf("lease url: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE recrawl_requests SET prev_url_state = $2 WHERE request_id = $1`, requestID, urlState); err != nil {
			return fmt.Errorf("remember url state: %w", err)
		}
		return nil
	})
	if err != nil {
		return RecrawlClaim{}, fmt.Errorf("store: claim re-crawl %q: %w", requestID, err)
	}
	return c, nil
}

// RecrawlRequest returns the record of requestID.
func (s *Store) RecrawlRequest(ctx context.Context, requestID string) (RecrawlRequest, error) {
	r, err := scanRecrawl(s.pool.QueryRow(ctx, `SELECT `+recrawlColumns+` FROM recrawl_requests WHERE request_id = $1`, requestID))
	if errors.Is(err, pgx.ErrNoRows) {
		return RecrawlRequest{}, fmt.Errorf("store: re-crawl request %q: %w", requestID, ErrNotFound)
	}
	if err != nil {
		return RecrawlRequest{}, fmt.Errorf("store: re-crawl request %q: %w", requestID, err)
	}
	return r, nil
}

// FinishRecrawl stores the crawler's reply and marks the request done, whatever attempt it
// answers: a fetch happened. A request already done keeps its first reply; the result says
// whether this call stored it.
func (s *Store) FinishRecrawl(ctx context.Context, requestID string, reply json.RawMessage) (bool, error) {
	if !json.Valid(reply) {
		return false, fmt.Errorf("store: finish re-crawl %q: reply is not valid json", requestID)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE recrawl_requests SET state = 'done', reply = $2, error = '', prev_url_state = NULL, updated_at = now()
		WHERE request_id = $1 AND state <> 'done'`, requestID, []byte(reply))
	if err != nil {
		return false, fmt.Errorf("store: finish re-crawl %q: %w", requestID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// FailRecrawl marks attempt of requestID failed: the request was certainly not fetched (never
// taken by the broker, or refused as expired). A resend may then claim it again. The URL goes
// back to the state it had before the claim leased it, if nothing else has moved it since.
// A request that is no longer pending in that attempt is left alone; the result says whether
// this call changed it.
func (s *Store) FailRecrawl(ctx context.Context, requestID string, attempt int, reason string) (bool, error) {
	var changed bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		changed = false
		var urlID int64
		var prev *string
		// The URL first, then the request, as ClaimRecrawl and a target's deleter (whose URL
		// deletes cascade to the requests) lock them.
		err := tx.QueryRow(ctx, `SELECT url_id FROM recrawl_requests WHERE request_id = $1`, requestID).Scan(&urlID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM urls WHERE id = $1 FOR UPDATE`, urlID); err != nil {
			return fmt.Errorf("lock url: %w", err)
		}
		err = tx.QueryRow(ctx, `
			SELECT prev_url_state FROM recrawl_requests
			WHERE request_id = $1 AND state = 'pending' AND attempts = $2 FOR UPDATE`, requestID, attempt).Scan(&prev)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if prev != nil {
			if _, err := tx.Exec(ctx, `
				UPDATE urls SET state = $2, lease_until = NULL
				WHERE id = $1 AND state = 'dispatched'`, urlID, *prev); err != nil {
				return fmt.Errorf("restore url state: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE recrawl_requests SET state = 'failed', error = $2, prev_url_state = NULL, updated_at = now()
			WHERE request_id = $1`, requestID, reason); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: fail re-crawl %q: %w", requestID, err)
	}
	return changed, nil
}
