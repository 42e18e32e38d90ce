package pipeline

import (
	"errors"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrChannelClosed is what settling a delivery returns once its channel is gone; the broker
// then returns the delivery to its queue by itself.
var ErrChannelClosed = amqp.ErrClosed

// errNoChannel is returned by settling a Delivery that did not come from a channel.
var errNoChannel = errors.New("pipeline: delivery has no channel to settle on")

// Delivery is one message received from a queue. It carries its own settlement: Ack, Nack,
// Requeue, Reject and Done go to the channel that delivered it, so no other package needs the
// AMQP client. The contract:
//
//   - Settle a delivery once, after its work is done or given up: Ack or Done when it is done
//     (for a delivery whose work produced messages, only after their publish is confirmed),
//     Requeue to have it delivered again, Reject to dead-letter it.
//   - Settling may be called from any goroutine, but only while the channel that delivered it
//     is open; afterwards it fails with ErrChannelClosed and the broker has already returned
//     the delivery to its queue.
//   - A delivery that is never settled is returned to its queue when its channel closes.
type Delivery struct {
	Body        []byte
	MessageID   string
	Type        string
	ContentType string
	// Exchange and RoutingKey are where the message was last published to.
	Exchange      string
	RoutingKey    string
	Timestamp     time.Time
	Redelivered   bool
	Persistent    bool
	ReplyTo       string
	CorrelationID string
	// DeliveryTag numbers the deliveries of one channel 1, 2, 3, …; a multiple-ack on a tag
	// settles every unsettled delivery of that channel up to it.
	DeliveryTag uint64

	ack     amqp.Acknowledger
	settler *Settler // the channel's, for deliveries from a Consumer
	headers amqp.Table
}

// WrapDelivery turns a delivery of the AMQP client into a Delivery with no Settler: Done acks
// it at once. A Consumer's deliveries come from Settler.Wrap instead.
func WrapDelivery(d amqp.Delivery) Delivery {
	return Delivery{
		Body: d.Body, MessageID: d.MessageId, Type: d.Type, ContentType: d.ContentType,
		Exchange: d.Exchange, RoutingKey: d.RoutingKey,
		Timestamp: d.Timestamp, Redelivered: d.Redelivered, Persistent: d.DeliveryMode == amqp.Persistent,
		ReplyTo: d.ReplyTo, CorrelationID: d.CorrelationId, DeliveryTag: d.DeliveryTag,
		ack: d.Acknowledger, headers: d.Headers,
	}
}

// Ack settles the delivery as done, now; with multiple, every earlier unsettled delivery of
// its channel too. Prefer Done, which lets several acks travel as one.
func (d Delivery) Ack(multiple bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	err := d.ack.Ack(d.DeliveryTag, multiple)
	d.settled(multiple)
	return err
}

// Nack settles the delivery as not done, now: requeue returns it to its queue, otherwise it is
// dead-lettered.
func (d Delivery) Nack(multiple, requeue bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	err := d.ack.Nack(d.DeliveryTag, multiple, requeue)
	d.settled(multiple)
	return err
}

// Requeue returns the delivery alone to its queue, to be delivered again (Nack with requeue).
func (d Delivery) Requeue() error { return d.Nack(false, true) }

// Reject settles the delivery alone as not done, like Nack without multiple.
func (d Delivery) Reject(requeue bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	err := d.ack.Reject(d.DeliveryTag, requeue)
	d.settled(false)
	return err
}

// Done reports the delivery done and wants it acked, possibly later and together with others:
// see Settler. An error means the channel is gone (the broker requeues the delivery itself).
func (d Delivery) Done() error { return DoneAll([]Delivery{d}) }

// DoneAll reports every delivery of ds done, as Done, sending at most one ack per channel for
// deliveries that can be acked together (a committed batch).
func DoneAll(ds []Delivery) error {
	var errs []error
	var flush []*Settler
	for _, d := range ds {
		switch {
		case d.ack == nil:
			errs = append(errs, errNoChannel)
		case d.settler == nil:
			errs = append(errs, d.ack.Ack(d.DeliveryTag, false))
		default:
			if d.settler.done(d.DeliveryTag) && !contains(flush, d.settler) {
				flush = append(flush, d.settler)
			}
		}
	}
	for _, s := range flush {
		errs = append(errs, s.flush())
	}
	return errors.Join(errs...)
}

func contains(ss []*Settler, s *Settler) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// settled records a settlement already sent for d (and, with multiple, every earlier delivery).
func (d Delivery) settled(multiple bool) {
	if d.settler != nil {
		d.settler.settled(d.DeliveryTag, multiple)
	}
}

// Settler settles one channel's deliveries with as few acks as it safely can: the one settler
// of the crawler's jobs and the processor's batches. Work finishes out of order (a crawler
// fetches many jobs at once), but a multiple-ack on tag T settles every unsettled delivery of
// the channel up to T, so it may only be sent once every earlier delivery is settled or also
// done. The Settler follows the channel's tags (1, 2, 3, …) from the lowest one not yet
// settled: when the deliveries below a tag are all settled or done, Done's acks go as one
// multiple-ack on the highest done tag. Ack, Nack, Requeue and Reject settle at once and are
// only recorded. While an unfinished delivery holds the lowest tag, done deliveries wait for
// their ack, but never more than maxWaiting of them: past that they are acked one by one, so
// a slow one cannot hold back the consumer's prefetch window for long. The tags settled behind
// an unfinished delivery stay recorded until it is settled or the channel closes.
type Settler struct {
	ack        amqp.Acknowledger
	maxWaiting int

	mu      sync.Mutex
	next    uint64          // lowest tag not known to be settled or done
	pending map[uint64]bool // tags ≥ next: true is done and waits for its ack, false is settled
	waiting int             // true entries in pending
}

// NewSettler returns the settler of one channel, acking on ack (the channel). maxWaiting bounds the done deliveries that wait for an earlier one (at least 1).
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

// Headers returns the delivery's headers as plain Go values: nested tables become
// map[string]any, lists []any; other values are as the client decoded them (string, []byte,
// bool, integers, floats, time.Time, a decimal). The result is a copy.
func (d Delivery) Headers() map[string]any {
	if d.headers == nil {
		return nil
	}
	return plainValue(d.headers).(map[string]any)
}

func plainValue(v any) any {
	switch x := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = plainValue(e)
		}
		return m
	case map[string]any:
		return plainValue(amqp.Table(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainValue(e)
		}
		return out
	default:
		return x
	}
}
