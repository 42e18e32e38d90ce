package pipeline

import (
	"errors"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrChannelClosed is what settling a delivery returns once its channel is gone; the broker
// then returns the delivery to its queue by itself.
var ErrChannelClosed = amqp.ErrClosed

// errNoChannel is returned by settling a Delivery that did not come from a channel.
var errNoChannel = errors.New("pipeline: delivery has no channel to settle on")

// Delivery is one message received from a queue. It carries its own settlement: Ack, Nack and
// Reject go to the channel that delivered it, so no other package needs the AMQP client.
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
	// (Settler.Ack) settles every unsettled delivery of that channel up to it.
	DeliveryTag uint64

	ack     amqp.Acknowledger
	headers amqp.Table
}

// WrapDelivery turns a delivery of the AMQP client into a Delivery.
func WrapDelivery(d amqp.Delivery) Delivery {
	return Delivery{
		Body: d.Body, MessageID: d.MessageId, Type: d.Type, ContentType: d.ContentType,
		Exchange: d.Exchange, RoutingKey: d.RoutingKey,
		Timestamp: d.Timestamp, Redelivered: d.Redelivered, Persistent: d.DeliveryMode == amqp.Persistent,
		ReplyTo: d.ReplyTo, CorrelationID: d.CorrelationId, DeliveryTag: d.DeliveryTag,
		ack: d.Acknowledger, headers: d.Headers,
	}
}

// Ack settles the delivery as done; with multiple, every earlier unsettled delivery of its
// channel too.
func (d Delivery) Ack(multiple bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	return d.ack.Ack(d.DeliveryTag, multiple)
}

// Nack settles the delivery as not done: requeue returns it to its queue, otherwise it is
// dead-lettered.
func (d Delivery) Nack(multiple, requeue bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	return d.ack.Nack(d.DeliveryTag, multiple, requeue)
}

// Requeue returns the delivery alone to its queue, to be delivered again (Nack with requeue).
func (d Delivery) Requeue() error { return d.Nack(false, true) }

// Reject settles the delivery alone as not done, like Nack without multiple.
func (d Delivery) Reject(requeue bool) error {
	if d.ack == nil {
		return errNoChannel
	}
	return d.ack.Reject(d.DeliveryTag, requeue)
}

// Settler is the channel a delivery came from, as far as settling goes. Settlers compare equal
// when their deliveries share a channel, so they can key a map of per-channel state.
type Settler struct{ ack amqp.Acknowledger }

// Settler returns the channel d settles on.
func (d Delivery) Settler() Settler { return Settler{ack: d.ack} }

// Ack acks the delivery with tag on this channel; with multiple, every earlier unsettled
// delivery of the channel too.
func (s Settler) Ack(tag uint64, multiple bool) error {
	if s.ack == nil {
		return errNoChannel
	}
	return s.ack.Ack(tag, multiple)
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
