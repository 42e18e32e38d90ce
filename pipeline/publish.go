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

// Publisher publishes persistent, mandatory messages on a confirm-mode channel and waits for
// the broker's confirms. Many goroutines may publish at once; their confirms are pipelined on
// one channel. A nack, a return or a lost channel fails the publish, so callers can keep the
// input unacked and retry.
type Publisher struct {
	conn *Conn
	log  *slog.Logger

	mu     sync.Mutex
	cur    *confirmChannel
	closed bool
	wg     sync.WaitGroup
}

// NewPublisher returns a Publisher on conn. It opens its channel on first use.
func NewPublisher(conn *Conn, log *slog.Logger) *Publisher {
	return &Publisher{conn: conn, log: log}
}

type pending struct {
	done     chan struct{}
	err      error
	returned error
	msgID    string
}

// confirmChannel is one generation of the publishing channel: delivery tags and the pending
// map belong to it alone.
type confirmChannel struct {
	ch      *amqp.Channel
	mu      sync.Mutex
	pending map[uint64]*pending
	byID    map[string]uint64
	dead    bool
}

// Publish publishes msgs to exchange with routing key and waits until the broker has confirmed
// every one of them. It returns the first failure.
func (p *Publisher) Publish(ctx context.Context, exchange, key string, msgs ...message.Encoded) error {
	waits, err := p.send(ctx, exchange, key, true, msgs)
	if err != nil {
		return err
	}
	failpoint.Inject(failpoint.PublishBeforeConfirm)
	var first error
	for _, w := range waits {
		if err := w.wait(ctx, exchange); err != nil {
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

// PublishAsync publishes msg like Publish but returns as soon as it is sent. The returned
// function waits for the broker's confirm and fails as Publish would; the caller must not treat
// msg as delivered before it returns nil.
func (p *Publisher) PublishAsync(ctx context.Context, exchange, key string, msg message.Encoded) (wait func(context.Context) error, err error) {
	waits, err := p.send(ctx, exchange, key, true, []message.Encoded{msg})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		failpoint.Inject(failpoint.PublishBeforeConfirm)
		return waits[0].wait(ctx, exchange)
	}, nil
}

// wait blocks until the broker settles the message or ctx ends.
func (w *pending) wait(ctx context.Context, exchange string) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("pipeline: publish to %s: waiting for confirm: %w", exchange, ctx.Err())
	}
}

// Emit publishes a non-mandatory, transient event without waiting for its confirm. Events are
// observations (heartbeats, progress), not work: losing one is harmless.
func (p *Publisher) Emit(ctx context.Context, exchange, key string, msg message.Encoded) error {
	_, err := p.send(ctx, exchange, key, false, []message.Encoded{msg})
	return err
}

func (p *Publisher) send(ctx context.Context, exchange, key string, work bool, msgs []message.Encoded) ([]*pending, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	cc, err := p.channel(ctx)
	if err != nil {
		return nil, err
	}
	waits := make([]*pending, 0, len(msgs))
	for _, m := range msgs {
		pub := amqp.Publishing{
			ContentType: message.ContentType(m.Body),
			MessageId:   m.ID,
			Type:        m.Type,
			Timestamp:   time.Now(),
			Body:        m.Body,
		}
		if work {
			pub.DeliveryMode = amqp.Persistent
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("pipeline: publish to %s: %w", exchange, err)
		}
		w := &pending{done: make(chan struct{}), msgID: m.ID}
		cc.mu.Lock()
		tag := cc.ch.GetNextPublishSeqNo()
		if work {
			cc.pending[tag] = w
			cc.byID[m.ID] = tag
		}
		cc.mu.Unlock()
		// A write the broker does not read (its connection blocked by a resource alarm) or the
		// network swallows would hold p.mu forever: when ctx ends first, cut the connection.
		stop := context.AfterFunc(ctx, p.conn.drop)
		err := cc.ch.PublishWithContext(ctx, exchange, key, work, false, pub)
		stop()
		if err != nil {
			cc.mu.Lock()
			delete(cc.pending, tag)
			delete(cc.byID, m.ID)
			cc.mu.Unlock()
			return nil, fmt.Errorf("pipeline: publish to %s: %w", exchange, err)
		}
		waits = append(waits, w)
	}
	return waits, nil
}

// channel returns the current confirm channel, opening a new generation if needed. p.mu held.
func (p *Publisher) channel(ctx context.Context) (*confirmChannel, error) {
	if p.cur != nil {
		p.cur.mu.Lock()
		dead := p.cur.dead
		p.cur.mu.Unlock()
		if !dead && !p.cur.ch.IsClosed() {
			return p.cur, nil
		}
	}
	ch, returns, confirms, err := openConfirmChannel(ctx, p.conn, 1024)
	if err != nil {
		return nil, err
	}
	cc := &confirmChannel{ch: ch, pending: map[uint64]*pending{}, byID: map[string]uint64{}}
	p.wg.Go(func() { cc.listen(returns, confirms, p.log) })
	p.cur = cc
	return cc, nil
}

func (cc *confirmChannel) listen(returns <-chan amqp.Return, confirms <-chan amqp.Confirmation, log *slog.Logger) {
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			cc.mu.Lock()
			if tag, found := cc.byID[r.MessageId]; found {
				if w := cc.pending[tag]; w != nil {
					w.returned = fmt.Errorf("%w: %d %s (exchange %q, key %q)", ErrReturned, r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
				}
			}
			cc.mu.Unlock()
			metrics.PublishReturns.Inc()
			log.Warn("publish returned", "exchange", r.Exchange, "key", r.RoutingKey, "reply", r.ReplyText)
		case c, ok := <-confirms:
			if !ok {
				cc.fail()
				return
			}
			metrics.ObserveConfirm(c.Ack)
			cc.mu.Lock()
			w := cc.pending[c.DeliveryTag]
			delete(cc.pending, c.DeliveryTag)
			if w != nil {
				delete(cc.byID, w.msgID)
				switch {
				case !c.Ack:
					w.err = ErrNacked
				case w.returned != nil:
					w.err = w.returned
				}
				close(w.done)
			}
			cc.mu.Unlock()
		}
	}
}

// fail ends every publish still waiting on this channel generation.
func (cc *confirmChannel) fail() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.dead = true
	for tag, w := range cc.pending {
		w.err = ErrChannelLost
		close(w.done)
		delete(cc.pending, tag)
	}
	clear(cc.byID)
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
