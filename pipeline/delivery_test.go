package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/pipeline"
)

// settlements records what a channel would have been told.
type settlements struct{ sent []string }

func (s *settlements) Ack(tag uint64, multiple bool) error {
	s.sent = append(s.sent, fmt.Sprintf("ack %d multiple=%t", tag, multiple))
	return nil
}

func (s *settlements) Nack(tag uint64, multiple, requeue bool) error {
	s.sent = append(s.sent, fmt.Sprintf("nack %d multiple=%t requeue=%t", tag, multiple, requeue))
	return nil
}

func (s *settlements) Reject(tag uint64, requeue bool) error {
	s.sent = append(s.sent, fmt.Sprintf("reject %d requeue=%t", tag, requeue))
	return nil
}

func TestDeliverySettlesOnItsChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		settle func(pipeline.Delivery) error
		want   string
	}{
		{"ack", func(d pipeline.Delivery) error { return d.Ack(false) }, "ack 7 multiple=false"},
		{"ack multiple", func(d pipeline.Delivery) error { return d.Ack(true) }, "ack 7 multiple=true"},
		{"nack", func(d pipeline.Delivery) error { return d.Nack(false, true) }, "nack 7 multiple=false requeue=true"},
		{"requeue", func(d pipeline.Delivery) error { return d.Requeue() }, "nack 7 multiple=false requeue=true"},
		{"reject", func(d pipeline.Delivery) error { return d.Reject(false) }, "reject 7 requeue=false"},
		{"settler ack", func(d pipeline.Delivery) error { return d.Settler().Ack(9, true) }, "ack 9 multiple=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := &settlements{}
			d := pipeline.WrapDelivery(amqp.Delivery{Acknowledger: ch, DeliveryTag: 7})
			if err := tc.settle(d); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tc.want}, ch.sent); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDeliveryWithoutChannelFailsToSettle(t *testing.T) {
	t.Parallel()
	var d pipeline.Delivery
	if d.Ack(false) == nil || d.Nack(false, true) == nil || d.Requeue() == nil || d.Reject(false) == nil || d.Settler().Ack(1, true) == nil {
		t.Error("settling a delivery with no channel succeeded")
	}
}

func TestSettlersCompareByChannel(t *testing.T) {
	t.Parallel()
	a, b := &settlements{}, &settlements{}
	da1 := pipeline.WrapDelivery(amqp.Delivery{Acknowledger: a, DeliveryTag: 1})
	da2 := pipeline.WrapDelivery(amqp.Delivery{Acknowledger: a, DeliveryTag: 2})
	db := pipeline.WrapDelivery(amqp.Delivery{Acknowledger: b, DeliveryTag: 1})
	if da1.Settler() != da2.Settler() {
		t.Error("deliveries of one channel have different settlers")
	}
	if da1.Settler() == db.Settler() {
		t.Error("deliveries of two channels share a settler")
	}
}

func TestDeliveryHeadersArePlainValues(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		in   amqp.Table
		want map[string]any
	}{
		{"none", nil, nil},
		{"empty", amqp.Table{}, map[string]any{}},
		{"x-death", amqp.Table{
			"x-death": []any{amqp.Table{"reason": "rejected", "count": int64(2), "routing-keys": []any{"rk"}, "time": at}},
			"n":       int32(3), "b": []byte("x"),
		}, map[string]any{
			"x-death": []any{map[string]any{"reason": "rejected", "count": int64(2), "routing-keys": []any{"rk"}, "time": at}},
			"n":       int32(3), "b": []byte("x"),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := pipeline.WrapDelivery(amqp.Delivery{Headers: tc.in}).Headers()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWrapDeliveryKeepsProperties(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	got := pipeline.WrapDelivery(amqp.Delivery{
		Body: []byte("b"), MessageId: "m", Type: "t", ContentType: "c", Exchange: "e", RoutingKey: "k",
		Timestamp: at, Redelivered: true, DeliveryMode: amqp.Persistent, ReplyTo: "r", CorrelationId: "cid", DeliveryTag: 4,
	})
	want := pipeline.Delivery{
		Body: []byte("b"), MessageID: "m", Type: "t", ContentType: "c", Exchange: "e", RoutingKey: "k",
		Timestamp: at, Redelivered: true, Persistent: true, ReplyTo: "r", CorrelationID: "cid", DeliveryTag: 4,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(pipeline.Delivery{})); diff != "" {
		t.Errorf("delivery (-want +got):\n%s", diff)
	}
}
