package pipeline

import (
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Settler settles one channel's deliveries with as few acks as it safely can: the one settler
// of the crawler's jobs and the processor's batches. Work finishes out of order (a crawler
// fetches many jobs at once), but a multiple-ack on tag T settles every unsettled delivery of
// the channel up to T, so it may only be sent once every earlier delivery is settled or also
// done. The Settler follows the channel's tags (1, 2, 3, …) from the lowest one not yet
// settled: when the deliveries below a tag are all settled or done, Done's acks go as one
// multiple-ack on the highest done tag. Ack, Nack, Requeue and Reject settle at once and are
// only recorded. While an unfinished delivery holds the lowest tag, done deliveries wait for
// their ack, but never more than maxWaiting of them: past that they are acked one by one. (A
// Consumer sets maxWaiting to its prefetch.) The tags settled behind an unfinished delivery
// stay recorded until it is settled or the channel closes.
type Settler struct {
	ack        amqp.Acknowledger
	maxWaiting int

	mu      sync.Mutex
	next    uint64          // lowest tag not known to be settled or done
	pending map[uint64]bool // tags ≥ next: true is done and waits for its ack, false is settled
	waiting int             // true entries in pending
}

// NewSettler returns the settler of one channel, acking on ack (the channel). maxWaiting
// bounds the done deliveries that wait for an earlier one (at least 1).
func NewSettler(ack amqp.Acknowledger, maxWaiting int) *Settler {
	return &Settler{ack: ack, maxWaiting: max(maxWaiting, 1), next: 1, pending: map[uint64]bool{}}
}

// Wrap turns a delivery of the Settler's channel into a Delivery that settles through it.
func (s *Settler) Wrap(d amqp.Delivery) Delivery {
	out := WrapDelivery(d)
	out.settler = s
	return out
}

// done records that the delivery with tag is done and wants its ack; it reports whether
// there may be acks to send (flush).
func (s *Settler) done(tag uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tag < s.next || s.pending[tag] {
		return false // settled already
	}
	s.pending[tag] = true
	s.waiting++
	return true
}

// settled records a settlement sent for tag (with multiple, for every earlier tag too) and
// sends the acks it makes possible.
func (s *Settler) settled(tag uint64, multiple bool) {
	s.mu.Lock()
	from := tag
	if multiple {
		from = s.next
	}
	for t := max(from, s.next); t <= tag; t++ {
		if s.pending[t] {
			s.waiting--
		}
		s.pending[t] = false
	}
	s.mu.Unlock()
	_ = s.flush() // an error means the channel is gone: the broker requeues on its own
}

// flush sends the acks that recorded settlements allow.
func (s *Settler) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last uint64
	for {
		wants, ok := s.pending[s.next]
		if !ok {
			break
		}
		if wants {
			last = s.next
			s.waiting--
		}
		delete(s.pending, s.next)
		s.next++
	}
	if last != 0 {
		if err := s.ack.Ack(last, true); err != nil {
			return err
		}
	}
	if s.waiting <= s.maxWaiting {
		return nil
	}
	// An unfinished delivery holds the lowest tag: ack the done ones on their own.
	var err error
	for tag, wants := range s.pending {
		if wants {
			if e := s.ack.Ack(tag, false); e != nil && err == nil {
				err = e
			}
			s.pending[tag] = false
			s.waiting--
		}
	}
	return err
}
