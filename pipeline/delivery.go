package pipeline

import (
	"errors"
	"slices"
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
			if d.settler.done(d.DeliveryTag) && !slices.Contains(flush, d.settler) {
				flush = append(flush, d.settler)
			}
		}
	}
	for _, s := range flush {
		errs = append(errs, s.flush())
	}
	return errors.Join(errs...)
}

// settled records a settlement already sent for d (and, with multiple, every earlier delivery).
func (d Delivery) settled(multiple bool) {
	if d.settler != nil {
		d.settler.settled(d.DeliveryTag, multiple)
	}
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
