package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// ErrNoOrigin is returned when a dead letter does not say where it was published.
var ErrNoOrigin = errors.New("deadletter: original exchange and routing key unknown")

// Store is what the Service needs from the database.
type Store interface {
	DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error)
	DeadLetter(ctx context.Context, id int64) (store.DeadLetter, error)
	DeleteDeadLetter(ctx context.Context, id int64) error
	PurgeDeadLetters(ctx context.Context, f store.DeadLetterFilter) (int64, error)
}

// Publisher publishes one message, mandatory, and waits for the broker's confirm.
// *pipeline.Sender implements it.
type Publisher interface {
	Send(ctx context.Context, exchange, key string, msg amqp.Publishing) error
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
	msg := amqp.Publishing{
		ContentType: d.ContentType, DeliveryMode: amqp.Persistent, MessageId: d.MessageID,
		Type: d.MessageType, Body: d.Body, Headers: republishHeaders(d.Headers),
	}
	msg.Headers[RequeueHeader] = pipeline.NewID()
	if err := s.Publisher.Send(ctx, d.Exchange, d.RoutingKey, msg); err != nil {
		return fmt.Errorf("deadletter: requeue %d to %q key %q: %w", id, d.Exchange, d.RoutingKey, err)
	}
	if err := s.Store.DeleteDeadLetter(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("deadletter: requeued %d but could not delete its row (it may be requeued twice): %w", id, err)
	}
	return nil
}

// republishHeaders keeps the message's own simple headers and drops the broker's death records
// (x-death, x-first-death-*, x-last-death-*), which belong to the old life of the message.
func republishHeaders(raw json.RawMessage) amqp.Table {
	out := amqp.Table{}
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return out
	}
	for k, v := range m {
		if k == "x-death" || k == RequeueHeader || strings.HasPrefix(k, "x-first-death") || strings.HasPrefix(k, "x-last-death") {
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

// RequeueAll requeues every dead letter matching f (its AfterID and Limit are ignored) and
// returns how many went back.
func (s *Service) RequeueAll(ctx context.Context, f store.DeadLetterFilter) (int, error) {
	f.AfterID, f.Limit = 0, 500
	total := 0
	var errs []error
	for {
		page, err := s.Store.DeadLetters(ctx, f)
		if err != nil {
			return total, errors.Join(append(errs, err)...)
		}
		if len(page) == 0 {
			return total, errors.Join(errs...)
		}
		ids := make([]int64, len(page))
		for i, d := range page {
			ids[i] = d.ID
		}
		n, err := s.Requeue(ctx, ids)
		total += n
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				return total, errors.Join(errs...)
			}
		}
		f.AfterID = ids[len(ids)-1] // rows that failed stay behind the cursor
	}
}

// Purge deletes every dead letter matching f (its AfterID and Limit are ignored) and returns
// how many went.
func (s *Service) Purge(ctx context.Context, f store.DeadLetterFilter) (int, error) {
	n, err := s.Store.PurgeDeadLetters(ctx, f)
	return int(n), err
}
