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
		{"done", func(d pipeline.Delivery) error { return d.Done() }, "ack 7 multiple=false"},
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
	if d.Ack(false) == nil || d.Nack(false, true) == nil || d.Requeue() == nil || d.Reject(false) == nil || d.Done() == nil {
		t.Error("settling a delivery with no channel succeeded")
	}
}

// DoneAll sends one multiple-ack per channel for a batch whose earlier deliveries are settled,
// and what is settled at once in between (Ack, Reject) does not stop it.
func TestDoneAllAcksABatchOncePerChannel(t *testing.T) {
	t.Parallel()
	a, b := &settlements{}, &settlements{}
	sa, sb := pipeline.NewSettler(a, 100), pipeline.NewSettler(b, 100)
	wrap := func(s *pipeline.Settler, ch *settlements, tag uint64) pipeline.Delivery {
		return s.Wrap(amqp.Delivery{Acknowledger: ch, DeliveryTag: tag})
	}
	if err := wrap(sa, a, 2).Ack(false); err != nil { // a robots result, settled at once
		t.Fatal(err)
	}
	if err := wrap(sa, a, 4).Reject(false); err != nil { // poison
		t.Fatal(err)
	}
	batch := []pipeline.Delivery{wrap(sa, a, 1), wrap(sb, b, 1), wrap(sa, a, 3), wrap(sb, b, 2), wrap(sa, a, 5)}
	if err := pipeline.DoneAll(batch); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ack 2 multiple=false", "reject 4 requeue=false", "ack 5 multiple=true"}, a.sent); diff != "" {
		t.Errorf("channel a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ack 2 multiple=true"}, b.sent); diff != "" {
		t.Errorf("channel b (-want +got):\n%s", diff)
	}
	// Done twice, or after the delivery is settled, sends nothing more.
	if err := pipeline.DoneAll(batch[:2]); err != nil {
		t.Fatal(err)
	}
	if len(a.sent) != 3 || len(b.sent) != 1 {
		t.Errorf("settled deliveries acked again: a %q, b %q", a.sent, b.sent)
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
