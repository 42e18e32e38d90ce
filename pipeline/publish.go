package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/failpoint"
	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
)

// Errors a publish can end with besides the context's and the connection's.
var (
	// ErrNacked means the broker refused to take responsibility for the message.
	ErrNacked = errors.New("pipeline: publish nacked by broker")
	// ErrReturned means the message was unroutable (mandatory publish returned).
	ErrReturned = errors.New("pipeline: publish returned as unroutable")
	// ErrChannelLost means the channel closed before the broker confirmed the message.
	ErrChannelLost = errors.New("pipeline: channel closed before confirm")
)

// Publisher publishes on its own confirm-mode channel of a Conn and tracks the broker's
// confirms. It is the only way Trawl publishes: results and jobs (Publish, PublishAsync), RPC
// requests (RPCClient) and replies (Reply), dead-letter requeues (Republish) and heartbeats
// (Emit). The contract:
//
//   - A confirmed publish (everything but Emit) returns nil only once the broker has confirmed
//     the message: it is the broker's, and the input it came from may be acked. It fails with
//     ErrReturned when a mandatory message cannot be routed, ErrNacked when the broker refuses
//     it, ErrChannelLost when the channel closes first, ErrClosed after Close. A failed publish
//     may still have been delivered (at least once): the caller keeps its input unacked and
//     retries, and consumers are idempotent.
//   - Many goroutines may publish at once. Their messages are written one after another on one
//     channel and their confirms are matched by delivery tag, so they are pipelined; a return
//     is matched to its message by message id, exchange and routing key.
//   - Context expiry ends the call, not the channel and never the connection: the call returns
//     the context's error, and a message already written stays tracked (its late confirm is
//     discarded), so other publishes on the channel are unaffected. One exception keeps
//     shutdown bounded (docs/adr/0048-one-publisher.md): a write the broker does not read
//     (it has blocked the connection for a resource alarm, or the write is still stuck
//     closeTimeout after the context ended) holds the connection's write lock, so no channel
//     of that connection can send anything; the connection is cut and redialled, which fails
//     the write at once.
//   - The channel is reopened by the next publish after it dies. Close closes it within a
//     bound (closeChannelBounded); it never closes the Conn unless the broker does not answer.
type Publisher struct {
	conn *Conn
	log  *slog.Logger
	// onReply, when set, makes every channel consume DirectReplyTo and hand each reply to it
	// (RPCClient). It must not block.
	onReply func(*confirmChannel, Delivery)

	mu     sync.Mutex // serialises writes (delivery tags follow write order); guards cur, closed
	cur    *confirmChannel
	closed bool
	wg     sync.WaitGroup
}

// NewPublisher returns a Publisher on conn. It opens its channel on first use.
func NewPublisher(conn *Conn, log *slog.Logger) *Publisher {
	return &Publisher{conn: conn, log: log}
}

// outgoing is one message to publish and how.
type outgoing struct {
	exchange, key string
	mandatory     bool
	confirm       bool // track the broker's confirm (everything but events)
	pub           amqp.Publishing
}

// work is a message of work: persistent, mandatory and confirmed.
func work(exchange, key string, m message.Encoded) outgoing {
	return outgoing{exchange: exchange, key: key, mandatory: true, confirm: true, pub: amqp.Publishing{
		ContentType: message.ContentType(m.Body), DeliveryMode: amqp.Persistent,
		MessageId: m.ID, Type: m.Type, Body: m.Body,
	}}
}

// returnKey is how a return is matched to its message.
type returnKey struct{ id, exchange, key string }

type pending struct {
	done     chan struct{}
	err      error
	returned error
	rk       returnKey
	sameKey  *pending // the next pending message with the same returnKey, in publish order
	exchange string
}

// confirmChannel is one generation of the publishing channel: delivery tags and the pending
// map belong to it alone.
type confirmChannel struct {
	ch   *amqp.Channel
	dead chan struct{} // closed when the channel's confirms end

	mu      sync.Mutex
	pending map[uint64]*pending
	byKey   map[returnKey]*pending // the oldest pending message of each returnKey
	isDead  bool
}

// Publish publishes msgs (persistent, mandatory) to exchange with routing key and waits until
// the broker has confirmed every one of them. It returns the first failure.
func (p *Publisher) Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error {
	out := make([]outgoing, len(msgs))
	for i, m := range msgs {
		out[i] = work(exchange, key, m)
	}
	_, waits, err := p.send(ctx, out, nil)
	if err != nil {
		return err
	}
	failpoint.Inject(failpoint.PublishBeforeConfirm)
	var first error
	for _, w := range waits {
		if err := w.wait(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// PublishAsync publishes msg like Publish but returns as soon as it is written. The returned
// function waits for the broker's confirm and fails as Publish would; the caller must not treat
// msg as delivered before it returns nil.
func (p *Publisher) PublishAsync(ctx context.Context, exchange, key string, msg message.Encoded) (wait func(context.Context) error, err error) {
	_, waits, err := p.send(ctx, []outgoing{work(exchange, key, msg)}, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		failpoint.Inject(failpoint.PublishBeforeConfirm)
		return waits[0].wait(ctx)
	}, nil
}

// Emit publishes a non-mandatory, transient event without waiting for its confirm. Events are
// observations (heartbeats, progress), not work: losing one is harmless.
func (p *Publisher) Emit(ctx context.Context, exchange, key string, msg message.Encoded) error {
	_, _, err := p.send(ctx, []outgoing{{exchange: exchange, key: key, pub: amqp.Publishing{
		ContentType: message.ContentType(msg.Body), MessageId: msg.ID, Type: msg.Type, Body: msg.Body,
	}}}, nil)
	return err
}

// Republished is a stored message sent back to the exchange it was first published to.
type Republished struct {
	MessageID   string
	Type        string
	ContentType string
	Body        []byte
	// Headers hold plain values: strings, bools, int64s and float64s.
	Headers map[string]any
}

// Republish sends msg persistent and mandatory to exchange with key, with its headers, and
// waits for the broker's confirm, failing as Publish does (the dead-letter requeue).
func (p *Publisher) Republish(ctx context.Context, exchange, key string, msg Republished) error {
	return p.publishOne(ctx, outgoing{exchange: exchange, key: key, mandatory: true, confirm: true, pub: amqp.Publishing{
		ContentType: msg.ContentType, DeliveryMode: amqp.Persistent, MessageId: msg.MessageID,
		Type: msg.Type, Body: msg.Body, Headers: amqp.Table(msg.Headers),
	}})
}

// Reply answers an RPC request: reply goes to the default exchange with routing key replyTo
// (the caller's direct reply-to address) and the request's correlation id, and the broker's
// confirm is awaited. It is not mandatory: RabbitMQ 3.x returns every mandatory publish to a
// direct reply-to address as NO_ROUTE even when it delivers it, so a caller that has gone away
// cannot be told apart; its reply is dropped by the broker.
func (p *Publisher) Reply(ctx context.Context, replyTo, correlationID string, reply message.RecrawlReply) error {
	if replyTo == "" {
		return errors.New("pipeline: reply: request has no reply_to")
	}
	body, err := message.Encode(reply)
	if err != nil {
		return err
	}
	return p.publishOne(ctx, outgoing{key: replyTo, confirm: true, pub: amqp.Publishing{
		ContentType: message.ContentTypeJSON, Type: message.TypeRecrawlReply, MessageId: reply.ID,
		CorrelationId: correlationID, Body: body,
	}})
}

// publishOne publishes one message and waits for its confirm.
func (p *Publisher) publishOne(ctx context.Context, o outgoing) error {
	_, waits, err := p.send(ctx, []outgoing{o}, nil)
	if err != nil {
		return err
	}
	return waits[0].wait(ctx)
}

// wait blocks until the broker settles the message or ctx ends.
func (w *pending) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("pipeline: publish to %q: waiting for confirm: %w", w.exchange, ctx.Err())
	}
}

// send writes msgs on the current channel generation, returning it and a wait for each
// confirmed message. before, if set, runs with the generation before the first write (the RPC
// client registers its call there).
func (p *Publisher) send(ctx context.Context, msgs []outgoing, before func(*confirmChannel)) (*confirmChannel, []*pending, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrClosed
	}
	cc, err := p.channel(ctx)
	if err != nil {
		return nil, nil, err
	}
	if before != nil {
		before(cc)
	}
	waits := make([]*pending, 0, len(msgs))
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return cc, nil, fmt.Errorf("pipeline: publish to %q: %w", m.exchange, err)
		}
		if m.pub.Timestamp.IsZero() {
			m.pub.Timestamp = time.Now()
		}
		var w *pending
		cc.mu.Lock()
		tag := cc.ch.GetNextPublishSeqNo()
		if m.confirm {
			w = &pending{done: make(chan struct{}), exchange: m.exchange,
				rk: returnKey{id: m.pub.MessageId, exchange: m.exchange, key: m.key}}
			cc.track(tag, w)
		}
		cc.mu.Unlock()
		if err := p.write(ctx, cc, m); err != nil {
			if w != nil {
				cc.mu.Lock()
				cc.settle(tag)
				cc.mu.Unlock()
			}
			return cc, nil, fmt.Errorf("pipeline: publish to %q key %q: %w", m.exchange, m.key, err)
		}
		if w != nil {
			waits = append(waits, w)
		}
	}
	return cc, waits, nil
}

// write writes one message on cc. A write normally takes microseconds, but one the broker does
// not read never ends (a resource alarm blocks the connection; the client writes whole frames
// under the connection's write lock). When ctx ends during the write, the connection is cut at
// once if the broker has blocked it, or closeTimeout later if the write is still stuck then,
// which fails the write; otherwise the write finishes and the message is tracked as any other.
func (p *Publisher) write(ctx context.Context, cc *confirmChannel, m outgoing) error {
	written := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		if p.conn.Blocked() {
			p.conn.drop()
			return
		}
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case <-written:
		case <-t.C:
			p.conn.drop()
		}
	})
	err := cc.ch.PublishWithContext(ctx, m.exchange, m.key, m.mandatory, false, m.pub)
	close(written)
	stop()
	return err
}

// track registers w as the message with tag. cc.mu held.
func (cc *confirmChannel) track(tag uint64, w *pending) {
	cc.pending[tag] = w
	if head := cc.byKey[w.rk]; head != nil {
		for head.sameKey != nil {
			head = head.sameKey
		}
		head.sameKey = w
	} else {
		cc.byKey[w.rk] = w
	}
}

// settle forgets the message with tag and returns it (nil if unknown). cc.mu held.
func (cc *confirmChannel) settle(tag uint64) *pending {
	w := cc.pending[tag]
	if w == nil {
		return nil
	}
	delete(cc.pending, tag)
	head := cc.byKey[w.rk]
	switch {
	case head == w && w.sameKey == nil:
		delete(cc.byKey, w.rk)
	case head == w:
		cc.byKey[w.rk] = w.sameKey
	default:
		for ; head != nil; head = head.sameKey {
			if head.sameKey == w {
				head.sameKey = w.sameKey
				break
			}
		}
	}
	return w
}

// channel returns the current confirm channel, opening a new generation if needed. p.mu held.
func (p *Publisher) channel(ctx context.Context) (*confirmChannel, error) {
	if cc := p.cur; cc != nil {
		cc.mu.Lock()
		dead := cc.isDead
		cc.mu.Unlock()
		if !dead && !cc.ch.IsClosed() {
			return cc, nil
		}
	}
	ch, returns, confirms, err := openConfirmChannel(ctx, p.conn, 1024)
	if err != nil {
		return nil, err
	}
	var replies <-chan amqp.Delivery
	if p.onReply != nil {
		// Direct reply-to requires no-ack mode: replies are not stored by the broker, so there
		// is nothing to acknowledge. It must be consumed, on the channel that publishes the
		// requests, before the first request is published.
		replies, err = ch.Consume(DirectReplyTo, "", true, false, false, false, nil)
		if err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("pipeline: consume %s: %w", DirectReplyTo, err)
		}
	}
	cc := &confirmChannel{ch: ch, dead: make(chan struct{}), pending: map[uint64]*pending{}, byKey: map[returnKey]*pending{}}
	p.wg.Go(func() { p.listen(cc, returns, confirms, replies) })
	p.cur = cc
	return cc, nil
}

// listen matches the broker's returns and confirms (and RPC replies) to cc's messages until
// the channel closes. Returns come on an unbuffered channel, so a message's return is always
// taken before its confirm (openConfirmChannel).
func (p *Publisher) listen(cc *confirmChannel, returns <-chan amqp.Return, confirms <-chan amqp.Confirmation, replies <-chan amqp.Delivery) {
	defer close(cc.dead)
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			cc.mu.Lock()
			for w := cc.byKey[returnKey{id: r.MessageId, exchange: r.Exchange, key: r.RoutingKey}]; w != nil; w = w.sameKey {
				if w.returned == nil {
					w.returned = fmt.Errorf("%w: %d %s (exchange %q, key %q)", ErrReturned, r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
					break
				}
			}
			cc.mu.Unlock()
			metrics.PublishReturns.Inc()
			p.log.Warn("publish returned", "exchange", r.Exchange, "key", r.RoutingKey, "reply", r.ReplyText)
		case c, ok := <-confirms:
			if !ok {
				cc.fail()
				return
			}
			metrics.ObserveConfirm(c.Ack)
			cc.mu.Lock()
			w := cc.settle(c.DeliveryTag)
			if w != nil {
				switch {
				case !c.Ack:
					w.err = ErrNacked
				case w.returned != nil:
					w.err = w.returned
				}
				close(w.done)
			}
			cc.mu.Unlock()
		case d, ok := <-replies:
			if !ok {
				replies = nil
				continue
			}
			p.onReply(cc, WrapDelivery(d))
		}
	}
}

// fail ends every publish still waiting on this channel generation.
func (cc *confirmChannel) fail() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.isDead = true
	for tag, w := range cc.pending {
		w.err = ErrChannelLost
		close(w.done)
		delete(cc.pending, tag)
	}
	clear(cc.byKey)
}

// Close closes the publishing channel; waiting publishes fail with ErrChannelLost. It does not
// close the Conn. Safe to call more than once.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		closeChannelBounded(p.conn, cur.ch, p.log)
	}
	p.wg.Wait()
	return nil
}
