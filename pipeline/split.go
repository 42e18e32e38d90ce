package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/trawlhq/trawl/message"
)

// Confirmer publishes messages and waits for the broker's confirms, as Publisher.Publish does.
type Confirmer interface {
	Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error
}

// ErrNotSplit means Split could not publish the parts and requeued the delivery whole.
var ErrNotSplit = errors.New("pipeline: parts not published; delivery requeued whole")

// errNoPublisher is why Split fails when it has no publisher to split with.
var errNoPublisher = errors.New("pipeline: no publisher to split with")

// Split replaces delivery d by msgs, its parts (a message of several jobs or results, one per
// message): it publishes msgs to exchange with key and, once the broker has confirmed every
// one, acks d. If a publish fails (or pub is nil), d is requeued whole and Split fails with
// ErrNotSplit; the parts that were confirmed are then delivered twice, which consumers absorb
// as any redelivery. d is never acked before its parts are the broker's, and a crash between
// the confirms and the ack also delivers them twice: at least once, never lost. Any other error
// is the ack's: d was split, but the broker will redeliver it, to be split again.
func Split(ctx context.Context, pub Confirmer, d Delivery, exchange, key string, msgs []message.Encoded) error {
	err := errNoPublisher
	if pub != nil {
		err = pub.Publish(ctx, exchange, key, msgs...)
	}
	if err != nil {
		_ = d.Requeue()
		return fmt.Errorf("%w: %w", ErrNotSplit, err)
	}
	return d.Ack(false)
}
