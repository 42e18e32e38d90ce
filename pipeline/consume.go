package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/message"
)

// Deliveries is a stream of deliveries from one channel. It is closed when the channel dies or
// the consumer is cancelled; acks on a delivery always go to the channel that delivered it.
type Deliveries = <-chan Delivery

// Consumer is Trawl's one consume loop: it consumes one queue, or one private subscription to
// the events exchange, with manual acks and a prefetch limit, reopening its channel with
// backoff after broker failures. Every delivery settles through its channel's Settler, which
// lets Done acks of several deliveries travel as one multiple-ack (at most Prefetch of them
// wait for an earlier unfinished delivery).
type Consumer struct {
	Conn  *Conn
	Queue string
	// Events, when set, consumes a subscription instead of Queue: a server-named, exclusive,
	// auto-delete classic queue bound to the events exchange with this routing key pattern,
	// declared anew on every channel and deleted with its consumer. What is published while
	// no one is subscribed is not kept: events are observations, not work.
	Events   string
	Prefetch int
	// Topology is declared on every new channel before consuming, so a consumer survives a
	// broker that lost its definitions.
	Topology Topology
	Log      *slog.Logger
}

// Run consumes until ctx ends. For each channel it calls handle with the delivery stream;
// handle must return once the stream is closed, after finishing (acking or nacking) the work it
// holds. When ctx ends, Run cancels the consumer so the broker sends no more, lets handle drain
// what was already delivered, then closes the channel. Unacked deliveries return to the queue.
func (c *Consumer) Run(ctx context.Context, handle func(Deliveries)) error {
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		err := c.once(ctx, handle)
		if ctx.Err() != nil {
			return nil
		}
		delay := backoff.Delay(attempt, 200*time.Millisecond, 5*time.Second)
		c.Log.Warn("consumer stopped, restarting", "queue", cmp.Or(c.Queue, c.Events), "err", err, "retry_in", delay.String())
		if !backoff.Sleep(ctx, delay) {
			return nil
		}
		if err == nil {
			attempt = -1 // a channel that worked resets the backoff
		}
	}
}

func (c *Consumer) once(ctx context.Context, handle func(Deliveries)) error {
	ch, err := c.Conn.Channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := c.Topology.Declare(ch); err != nil {
		return err
	}
	queue, exclusive := c.Queue, false
	if c.Events != "" {
		q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{"x-queue-type": "classic"})
		if err != nil {
			return fmt.Errorf("pipeline: declare events queue: %w", err)
		}
		if err := ch.QueueBind(q.Name, c.Events, c.Topology.EventsExchange(), false, nil); err != nil {
			return fmt.Errorf("pipeline: bind events queue: %w", err)
		}
		queue, exclusive = q.Name, true
	}
	if err := ch.Qos(c.Prefetch, 0, false); err != nil {
		return fmt.Errorf("pipeline: qos: %w", err)
	}
	tag := "trawl-" + message.NewID()[:12]
	raw, err := ch.ConsumeWithContext(context.WithoutCancel(ctx), queue, tag, false, exclusive, false, false, nil)
	if err != nil {
		return fmt.Errorf("pipeline: consume %s: %w", queue, err)
	}
	// The stream handed out closes when the client's closes (cancel-ok or a dead channel).
	settler := NewSettler(ch, c.Prefetch)
	deliveries := make(chan Delivery)
	abandoned := make(chan struct{})
	go func() {
		defer close(deliveries)
		for d := range raw {
			select {
			case deliveries <- settler.Wrap(d):
			case <-abandoned: // handle returned early; closing the channel ends raw
				return
			}
		}
	}()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			// Stop new deliveries; the library closes the stream after the broker's cancel-ok.
			_ = ch.Cancel(tag, false)
		case <-stop:
		}
	}()
	handle(deliveries)
	close(abandoned)
	close(stop)
	<-done
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("pipeline: channel closed: %w", err)
		}
	default:
	}
	return nil
}
