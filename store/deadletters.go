package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is a message the broker dead-lettered, mirrored into Postgres by the processor so
// operators can list, requeue and purge it from the dashboard.
type DeadLetter struct {
	ID            int64
	Reason        string // x-death reason: rejected, delivery_limit, expired, maxlen
	OriginalQueue string // queue the message died in
	Exchange      string // exchange it was first published to
	RoutingKey    string
	MessageType   string // envelope type when decodable
	TargetID      *int64
	Host          string
	URL           string
	ErrorClass    string
	Summary       string // short, sanitized description of the payload
	Size          int
	Count         int64 // x-death count
	Requeues      int   // times requeued from the dead letters before this death
	DeadAt        time.Time

	MessageID   string
	ContentType string
	// Headers are the message's AMQP headers (x-death included) as JSON; Body is the raw payload.
	// Both are filled by DeadLetter (one row), not by DeadLetters (lists).
	Headers json.RawMessage
	Body    []byte
	// Fingerprint identifies one death of one message, so a redelivered dead letter is stored
	// once. Set by whoever builds the row; not listed.
	Fingerprint string
}

// DeadLetterFilter selects dead letters; zero fields match everything.
type DeadLetterFilter struct {
	TargetID   int64
	Host       string
	ErrorClass string
	Reason     string
	AfterID    int64 // keyset pagination: rows with ID > AfterID
	// BeforeID, when not 0 (and AfterID is 0), pages back: the last Limit rows with ID < BeforeID,
	// still listed in id order.
	BeforeID int64
	// ThroughID, when not 0, keeps only rows with ID <= ThroughID, so that a bulk action
	// bounded by MaxDeadLetterID at its start never sees rows stored after it began.
	ThroughID int64
	Limit     int
}

const deadLetterColumns = `id, reason, original_queue, exchange, routing_key, message_type, target_id, host, url,
	error_class, summary, size, death_count, requeues, dead_at, message_id, content_type`

func scanDeadLetter(row pgx.Row, extra ...any) (DeadLetter, error) {
	var d DeadLetter
	dest := []any{&d.ID, &d.Reason, &d.OriginalQueue, &d.Exchange, &d.RoutingKey, &d.MessageType, &d.TargetID,
		&d.Host, &d.URL, &d.ErrorClass, &d.Summary, &d.Size, &d.Count, &d.Requeues, &d.DeadAt, &d.MessageID, &d.ContentType}
	err := row.Scan(append(dest, extra...)...)
	return d, err
}

// filterSQL is the WHERE clause of a filter over arguments $1..$4.
const filterSQL = `($1::bigint = 0 OR target_id = $1) AND ($2::text = '' OR host = $2)
	AND ($3::text = '' OR error_class = $3) AND ($4::text = '' OR reason = $4)`

// InsertDeadLetter stores a dead letter and returns its id. A dead letter with the same
// fingerprint is stored only once: inserting it again returns the existing id and false.
func (s *Store) InsertDeadLetter(ctx context.Context, d DeadLetter) (int64, bool, error) {
	if d.Fingerprint == "" {
		return 0, false, errors.New("store: insert dead letter: empty fingerprint")
	}
	headers := d.Headers
	if len(headers) == 0 {
		headers = json.RawMessage(`{}`)
	}
	body := d.Body
	if body == nil {
		body = []byte{}
	}
	deadAt := d.DeadAt
	if deadAt.IsZero() {
		deadAt = time.Now()
	}
	var id int64
	var inserted bool
	err := s.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO dead_letters (fingerprint, reason, original_queue, exchange, routing_key, message_type,
				target_id, host, url, error_class, summary, size, death_count, dead_at, message_id, content_type,
				body, headers, requeues)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
			ON CONFLICT (fingerprint) DO NOTHING
			RETURNING id)
		SELECT id, true FROM ins
		UNION ALL
		SELECT id, false FROM dead_letters WHERE fingerprint = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
		d.Fingerprint, d.Reason, d.OriginalQueue, d.Exchange, d.RoutingKey, d.MessageType, d.TargetID, d.Host,
		d.URL, d.ErrorClass, d.Summary, d.Size, d.Count, deadAt, d.MessageID, d.ContentType, body, []byte(headers),
		max(d.Requeues, 0),
	).Scan(&id, &inserted)
	if errors.Is(err, pgx.ErrNoRows) {
		// The conflicting row was committed by a concurrent insert after this statement's
		// snapshot: read it now.
		inserted = false
		err = s.pool.QueryRow(ctx, `SELECT id FROM dead_letters WHERE fingerprint = $1`, d.Fingerprint).Scan(&id)
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: insert dead letter: %w", err)
	}
	return id, inserted, nil
}

// DeadLetters lists dead letters matching f in id order, at most f.Limit (default 100, at most
// 1000) after f.AfterID, or the last ones before f.BeforeID. Bodies and headers are left out.
func (s *Store) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	a := args{f.TargetID, f.Host, f.ErrorClass, f.Reason}
	var where, dir string
	if f.BeforeID > 0 && f.AfterID == 0 {
		where, dir = filterSQL+" AND id < "+a.add(f.BeforeID), "DESC"
	} else {
		where, dir = filterSQL+" AND id > "+a.add(f.AfterID), "ASC"
	}
	if f.ThroughID != 0 {
		where += " AND id <= " + a.add(f.ThroughID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters
		WHERE `+where+` ORDER BY id `+dir+` LIMIT `+a.add(limit), a...)
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) { return scanDeadLetter(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list dead letters: %w", err)
	}
	if dir == "DESC" {
		slices.Reverse(list)
	}
	return list, nil
}

// CountDeadLetters counts the dead letters matching f (its paging fields are ignored): exactly
// up to CountCap, else estimated.
func (s *Store) CountDeadLetters(ctx context.Context, f DeadLetterFilter) (Total, error) {
	n, err := s.countRows(ctx, "dead_letters", filterSQL, []any{f.TargetID, f.Host, f.ErrorClass, f.Reason})
	if err != nil {
		return Total{}, fmt.Errorf("store: count dead letters: %w", err)
	}
	return n, nil
}

// MaxDeadLetterID returns the highest dead letter id stored so far, 0 when there is none.
func (s *Store) MaxDeadLetterID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM dead_letters`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: max dead letter id: %w", err)
	}
	return id, nil
}

// DeadLetter returns one dead letter with its body and headers.
func (s *Store) DeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	var headers, body []byte
	var fp string
	d, err := scanDeadLetter(s.pool.QueryRow(ctx, `SELECT `+deadLetterColumns+`, headers, body, fingerprint
		FROM dead_letters WHERE id = $1`, id), &headers, &body, &fp)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, fmt.Errorf("store: dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("store: dead letter %d: %w", id, err)
	}
	d.Headers, d.Body, d.Fingerprint = headers, body, fp
	return d, nil
}

// DeleteDeadLetter removes one dead letter; a missing one is ErrNotFound.
func (s *Store) DeleteDeadLetter(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dead_letters WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete dead letter %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete dead letter %d: %w", id, ErrNotFound)
	}
	return nil
}

// PurgeDeadLetters deletes every dead letter matching f (its AfterID, BeforeID, ThroughID and
// Limit are ignored) and returns how many went.
func (s *Store) PurgeDeadLetters(ctx context.Context, f DeadLetterFilter) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM dead_letters WHERE `+filterSQL, f.TargetID, f.Host, f.ErrorClass, f.Reason)
	if err != nil {
		return 0, fmt.Errorf("store: purge dead letters: %w", err)
	}
	return tag.RowsAffected(), nil
}
