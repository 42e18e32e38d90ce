package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// ErrNoOrigin is returned when a dead letter does not say where it was published.
var ErrNoOrigin = errors.New("deadletter: original exchange and routing key unknown")

// Store is what the Service needs from the database.
type Store interface {
	DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error)
	MaxDeadLetterID(ctx context.Context) (int64, error)
	DeadLetter(ctx context.Context, id int64) (store.DeadLetter, error)
	DeleteDeadLetter(ctx context.Context, id int64) error
	PurgeDeadLetters(ctx context.Context, f store.DeadLetterFilter) (int64, error)
}

// Publisher publishes one message, persistent and mandatory, and waits for the broker's
// confirm. *pipeline.Publisher implements it.
type Publisher interface {
	Republish(ctx context.Context, exchange, key string, msg pipeline.Republished) error
}

// Service lists, requeues and purges mirrored dead letters.
type Service struct {
	Store     Store
	Publisher Publisher
}

// List returns dead letters matching f (keyset-paginated by f.AfterID and f.Limit).
func (s *Service) List(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	return s.Store.DeadLetters(ctx, f)
}

// Requeue sends each dead letter back to the exchange and routing key it was published with
// (from its x-death header), waits for the broker's confirm, then deletes its row. It returns
// how many were requeued; failures (unknown id, no origin, unroutable, broker down) are joined
// into the error and leave their rows in place. At least once: a crash between the confirm and
// the delete leaves the row, and requeuing it again publishes a second copy.
func (s *Service) Requeue(ctx context.Context, ids []int64) (int, error) {
	n := 0
	var errs []error
	for _, id := range ids {
		if err := s.requeue(ctx, id); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (s *Service) requeue(ctx context.Context, id int64) error {
	d, err := s.Store.DeadLetter(ctx, id)
	if err != nil {
		return fmt.Errorf("deadletter: requeue %d: %w", id, err)
	}
	if d.Exchange == "" && d.RoutingKey == "" {
		return fmt.Errorf("deadletter: requeue %d: %w", id, ErrNoOrigin)
	}
	msg := pipeline.Republished{
		ContentType: d.ContentType, MessageID: d.MessageID,
		Type: d.MessageType, Body: d.Body, Headers: republishHeaders(d.Headers),
	}
	msg.Headers[RequeueHeader] = message.NewID()
	msg.Headers[RequeuesHeader] = int64(d.Requeues) + 1
	if err := s.Publisher.Republish(ctx, d.Exchange, d.RoutingKey, msg); err != nil {
		return fmt.Errorf("deadletter: requeue %d to %q key %q: %w", id, d.Exchange, d.RoutingKey, err)
	}
	if err := s.Store.DeleteDeadLetter(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("deadletter: requeued %d but could not delete its row (it may be requeued twice): %w", id, err)
	}
	return nil
}

// republishHeaders keeps the message's own simple headers and drops the broker's death records
// (x-death, x-first-death-*, x-last-death-*), which belong to the old life of the message.
func republishHeaders(raw json.RawMessage) map[string]any {
	out := map[string]any{}
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return out
	}
	for k, v := range m {
		if k == "x-death" || k == RequeueHeader || k == RequeuesHeader || strings.HasPrefix(k, "x-first-death") || strings.HasPrefix(k, "x-last-death") {
			continue
		}
		switch x := v.(type) {
		case string, bool:
			out[k] = x
		case float64:
			if x == float64(int64(x)) {
				out[k] = int64(x)
			} else {
				out[k] = x
			}
		}
	}
	return out
}

// RequeueCounts is the outcome of a RequeueAll.
type RequeueCounts struct {
	// Requeued went back to their queues; their rows are gone.
	Requeued int `json:"requeued"`
	// Failed could not be requeued (no origin, unroutable, broker down); their rows stay.
	Failed int `json:"failed"`
	// Skipped were gone before their turn: requeued or purged by someone else meanwhile.
	Skipped int `json:"skipped"`
}

// requeueAllPage is how many rows RequeueAll reads at a time, and maxReportedErrors how many
// failures its error describes (the rest are counted).
const (
	requeueAllPage    = 500
	maxReportedErrors = 5
)

// RequeueAll requeues the dead letters matching f that exist when it starts (its AfterID,
// ThroughID and Limit are ignored) and says how many went back, failed or were already gone.
// A message that dies again while RequeueAll runs is stored as a new dead letter, with a higher
// id than any that existed at the start, so it is not requeued again: permanent poison makes one
// round trip per call, not a loop. Rows are read a page at a time, so memory does not grow with
// the number of dead letters. The error describes the first few failures; when ctx ends, the
// counts so far are returned with its error.
func (s *Service) RequeueAll(ctx context.Context, f store.DeadLetterFilter) (RequeueCounts, error) {
	var c RequeueCounts
	last, err := s.Store.MaxDeadLetterID(ctx)
	if err != nil {
		return c, fmt.Errorf("deadletter: requeue all: %w", err)
	}
	if last == 0 {
		return c, nil
	}
	f.AfterID, f.ThroughID, f.Limit = 0, last, requeueAllPage
	var errs []error
	report := func() error {
		if c.Failed > len(errs) {
			errs = append(errs, fmt.Errorf("deadletter: %d more dead letters not requeued", c.Failed-len(errs)))
		}
		return errors.Join(errs...)
	}
	for {
		page, err := s.Store.DeadLetters(ctx, f)
		if err != nil {
			return c, errors.Join(report(), fmt.Errorf("deadletter: requeue all: %w", err))
		}
		if len(page) == 0 {
			return c, report()
		}
		for _, d := range page {
			err := s.requeue(ctx, d.ID)
			switch {
			case err == nil:
				c.Requeued++
			case errors.Is(err, store.ErrNotFound):
				c.Skipped++
			default:
				c.Failed++
				if len(errs) < maxReportedErrors {
					errs = append(errs, err)
				}
			}
			if ctx.Err() != nil {
				return c, errors.Join(report(), ctx.Err())
			}
		}
		f.AfterID = page[len(page)-1].ID // rows that failed stay behind the cursor
	}
}

// Purge deletes every dead letter matching f (its AfterID and Limit are ignored) and returns
// how many went.
func (s *Service) Purge(ctx context.Context, f store.DeadLetterFilter) (int, error) {
	n, err := s.Store.PurgeDeadLetters(ctx, f)
	return int(n), err
}
