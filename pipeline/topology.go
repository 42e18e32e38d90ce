package pipeline

import (
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Routing keys.
const (
	KeyJob  = "job"
	KeyPage = "page"
)

// Topology names every exchange and queue under a common prefix, so that tests and several
// installations can share one broker.
type Topology struct {
	Prefix string
	// DeliveryLimit is the quorum queues' x-delivery-limit: after this many failed deliveries a
	// message is dead-lettered. It is always set explicitly, because RabbitMQ 3.x has no default
	// (unlimited) and 4.x defaults to 20.
	DeliveryLimit int
}

// CrawlExchange is the direct exchange crawl jobs are published to.
func (t Topology) CrawlExchange() string { return t.Prefix + "crawl" }

// CrawlQueue is the quorum queue crawlers consume jobs from.
func (t Topology) CrawlQueue() string { return t.Prefix + "crawl.jobs" }

// PagesExchange is the direct exchange fetch results are published to.
func (t Topology) PagesExchange() string { return t.Prefix + "pages" }

// PagesQueue is the quorum queue processors consume fetch results from.
func (t Topology) PagesQueue() string { return t.Prefix + "pages" }

// RecrawlQueue is the quorum queue crawlers take re-crawl RPC requests from. Requests are
// published to the crawl exchange with routing key KeyRecrawl.
func (t Topology) RecrawlQueue() string { return t.Prefix + "rpc.recrawl" }

// EventsExchange is the topic exchange for heartbeats and progress events.
func (t Topology) EventsExchange() string { return t.Prefix + "events" }

// DeadLetterExchange receives what the work queues dead-letter.
func (t Topology) DeadLetterExchange() string { return t.Prefix + "dlx" }

// DeadLetterQueue holds dead-lettered messages with their x-death headers.
func (t Topology) DeadLetterQueue() string { return t.Prefix + "dead-letters" }

// WorkQueues lists the work queues with their exchange and routing key.
func (t Topology) WorkQueues() []Binding {
	return []Binding{
		{Exchange: t.CrawlExchange(), Key: KeyJob, Queue: t.CrawlQueue()},
		{Exchange: t.PagesExchange(), Key: KeyPage, Queue: t.PagesQueue()},
		{Exchange: t.CrawlExchange(), Key: KeyRecrawl, Queue: t.RecrawlQueue()},
	}
}

// Binding ties a queue to an exchange with a routing key.
type Binding struct{ Exchange, Key, Queue string }

// Queues lists every queue of the topology, work queues first.
func (t Topology) Queues() []string {
	return []string{t.CrawlQueue(), t.PagesQueue(), t.RecrawlQueue(), t.DeadLetterQueue()}
}

// Exchanges lists every exchange of the topology.
func (t Topology) Exchanges() []string {
	return []string{t.CrawlExchange(), t.PagesExchange(), t.EventsExchange(), t.DeadLetterExchange()}
}

func (t Topology) workQueueArgs() amqp.Table {
	return amqp.Table{
		"x-queue-type":           "quorum",
		"x-delivery-limit":       int64(t.DeliveryLimit),
		"x-dead-letter-exchange": t.DeadLetterExchange(),
		"x-dead-letter-strategy": "at-least-once",
		"x-overflow":             "reject-publish",
	}
}

// Declare creates the topology idempotently. Re-declaring with the same arguments is a no-op;
// different arguments fail with PRECONDITION_FAILED, which is reported as an error.
func (t Topology) Declare(ch *amqp.Channel) error {
	if t.DeliveryLimit <= 0 {
		return fmt.Errorf("pipeline: declare: delivery limit must be positive, got %d", t.DeliveryLimit)
	}
	for _, ex := range []struct{ name, kind string }{
		{t.CrawlExchange(), amqp.ExchangeDirect},
		{t.PagesExchange(), amqp.ExchangeDirect},
		{t.EventsExchange(), amqp.ExchangeTopic},
		{t.DeadLetterExchange(), amqp.ExchangeFanout},
	} {
		if err := ch.ExchangeDeclare(ex.name, ex.kind, true, false, false, false, nil); err != nil {
			return fmt.Errorf("pipeline: declare exchange %s: %w", ex.name, err)
		}
	}
	if _, err := ch.QueueDeclare(t.DeadLetterQueue(), true, false, false, false,
		amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return fmt.Errorf("pipeline: declare queue %s: %w", t.DeadLetterQueue(), err)
	}
	if err := ch.QueueBind(t.DeadLetterQueue(), "", t.DeadLetterExchange(), false, nil); err != nil {
		return fmt.Errorf("pipeline: bind %s: %w", t.DeadLetterQueue(), err)
	}
	for _, b := range t.WorkQueues() {
		if _, err := ch.QueueDeclare(b.Queue, true, false, false, false, t.workQueueArgs()); err != nil {
			return fmt.Errorf("pipeline: declare queue %s: %w", b.Queue, err)
		}
		if err := ch.QueueBind(b.Queue, b.Key, b.Exchange, false, nil); err != nil {
			return fmt.Errorf("pipeline: bind %s: %w", b.Queue, err)
		}
	}
	return nil
}

// Delete removes every queue and exchange of the topology. Tests use it to clean up.
func (t Topology) Delete(ch *amqp.Channel) error {
	for _, q := range t.Queues() {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("pipeline: delete queue %s: %w", q, err)
		}
	}
	for _, ex := range t.Exchanges() {
		if err := ch.ExchangeDelete(ex, false, false); err != nil {
			return fmt.Errorf("pipeline: delete exchange %s: %w", ex, err)
		}
	}
	return nil
}
