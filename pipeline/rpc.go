package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/trawlhq/trawl/message"
)

// KeyRecrawl routes re-crawl RPC requests from the crawl exchange to the recrawl queue.
const KeyRecrawl = "recrawl"

// DirectReplyTo is RabbitMQ's pseudo-queue for request/reply without a reply queue: the caller
// consumes it in no-ack mode and publishes requests with it as reply_to on the same channel.
const DirectReplyTo = "amq.rabbitmq.reply-to"

// RPC errors. A Call fails with exactly one of these (wrapped), so callers can tell "the
// broker never took the request" (safe to send again) from "the request may be running".
var (
	// ErrRPCTimeout means no reply came before the deadline. The request may still be
	// queued or running: a crawler may fetch and reply later.
	ErrRPCTimeout = errors.New("pipeline: rpc: no reply before the deadline")
	// ErrReplyLost means the channel the reply would have come back on closed after the request
	// was sent: the request may still run, but its reply cannot reach this caller.
	ErrReplyLost = errors.New("pipeline: rpc: channel closed while waiting for the reply")
	// ErrNotSent means the broker certainly did not take the request (returned as unroutable,
	// nacked, or the publish failed before it left): sending it again is safe.
	ErrNotSent = errors.New("pipeline: rpc: request not accepted by the broker")
)

// Sender publishes single mandatory messages on its own confirm-mode channel and waits for each
// confirm in turn. It is meant for low-volume traffic that needs per-message properties the
// work Publisher does not set: RPC requests and replies (reply_to, correlation_id) and
// dead-letter requeues (headers). One publish is outstanding at a time, so a confirm and a
// return always belong to the publish waiting for them. The channel is reopened after it dies.
type Sender struct {
	conn *Conn
	log  *slog.Logger
	// onReply, when set, makes every channel generation consume DirectReplyTo and hand each
	// reply to it. It must not block.
	onReply func(*senderGen, amqp.Delivery)

	mu     sync.Mutex // serialises publishes; guards gen and closed
	gen    *senderGen
	closed bool
	wg     sync.WaitGroup
}

// NewSender returns a Sender on conn; it opens its channel on first use.
func NewSender(conn *Conn, log *slog.Logger) *Sender {
	return &Sender{conn: conn, log: log}
}

// senderGen is one generation of the Sender's channel.
type senderGen struct {
	ch      *amqp.Channel
	results chan confirmResult // capacity 1: one publish outstanding at a time
	dead    chan struct{}      // closed when the channel closes

	mu       sync.Mutex
	returned *amqp.Return
}

type confirmResult struct {
	ack      bool
	returned *amqp.Return
}

// Send publishes msg to exchange with key (mandatory) and waits for the broker's confirm. An
// unroutable message fails with ErrReturned, a nack with ErrNacked, a channel that dies first
// with ErrChannelLost.
func (s *Sender) Send(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	_, err := s.send(ctx, exchange, key, true, msg, nil)
	return err
}

// send publishes and waits for the confirm, returning the channel generation used. before, if
// set, runs with the generation just before the publish (to register a reply waiter).
func (s *Sender) send(ctx context.Context, exchange, key string, mandatory bool, msg amqp.Publishing, before func(*senderGen)) (*senderGen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	g, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if before != nil {
		before(g)
	}
	if msg.Timestamp.IsZero() {
		msg.Timestamp = time.Now()
	}
	if err := g.ch.PublishWithContext(ctx, exchange, key, mandatory, false, msg); err != nil {
		s.drop(g)
		return g, fmt.Errorf("pipeline: send to %q key %q: %w", exchange, key, err)
	}
	select {
	case r := <-g.results:
		return g, r.err(exchange, key)
	case <-g.dead:
		select { // the confirm may have arrived just before the channel closed
		case r := <-g.results:
			return g, r.err(exchange, key)
		default:
		}
		return g, fmt.Errorf("pipeline: send to %q key %q: %w", exchange, key, ErrChannelLost)
	case <-ctx.Done():
		// The confirm is still due on this channel; a later publish must not mistake it for its
		// own, so this generation is abandoned.
		s.drop(g)
		return g, fmt.Errorf("pipeline: send to %q key %q: waiting for confirm: %w", exchange, key, ctx.Err())
	}
}

func (r confirmResult) err(exchange, key string) error {
	switch {
	case !r.ack:
		return fmt.Errorf("pipeline: send to %q key %q: %w", exchange, key, ErrNacked)
	case r.returned != nil:
		return fmt.Errorf("pipeline: send to %q key %q: %w: %d %s", exchange, key, ErrReturned, r.returned.ReplyCode, r.returned.ReplyText)
	}
	return nil
}

// current returns the live generation or opens a new one. s.mu held.
func (s *Sender) current(ctx context.Context) (*senderGen, error) {
	if g := s.gen; g != nil {
		select {
		case <-g.dead:
		default:
			if !g.ch.IsClosed() {
				return g, nil
			}
		}
	}
	ch, returns, confirms, err := openConfirmChannel(ctx, s.conn, 1)
	if err != nil {
		return nil, err
	}
	g := &senderGen{ch: ch, results: make(chan confirmResult, 1), dead: make(chan struct{})}
	var replies <-chan amqp.Delivery
	if s.onReply != nil {
		// Direct reply-to requires no-ack mode: replies are not stored by the broker, so there
		// is nothing to acknowledge. It must be consumed before the first request is published.
		replies, err = ch.Consume(DirectReplyTo, "", true, false, false, false, nil)
		if err != nil {
			_ = ch.Close()
			return nil, fmt.Errorf("pipeline: consume %s: %w", DirectReplyTo, err)
		}
	}
	s.wg.Go(func() { s.listen(g, returns, confirms, replies) })
	s.gen = g
	return g, nil
}

func (s *Sender) listen(g *senderGen, returns <-chan amqp.Return, confirms <-chan amqp.Confirmation, replies <-chan amqp.Delivery) {
	defer close(g.dead)
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			g.mu.Lock()
			g.returned = &r
			g.mu.Unlock()
		case c, ok := <-confirms:
			if !ok {
				return
			}
			g.mu.Lock()
			res := confirmResult{ack: c.Ack, returned: g.returned}
			g.returned = nil
			g.mu.Unlock()
			select {
			case g.results <- res:
			default: // nobody waits for it any more (abandoned generation)
			}
		case d, ok := <-replies:
			if !ok {
				replies = nil
				continue
			}
			s.onReply(g, d)
		}
	}
}

// drop abandons generation g: it is closed, and the next publish opens a new channel. s.mu held.
func (s *Sender) drop(g *senderGen) {
	if s.gen == g {
		s.gen = nil
	}
	_ = g.ch.Close()
}

// Reply answers an RPC request: reply goes to the default exchange with routing key replyTo
// (the caller's direct reply-to address) and the request's correlation id, and the broker's
// confirm is awaited. It is not mandatory: RabbitMQ 3.x returns every mandatory publish to a
// direct reply-to address as NO_ROUTE even when it delivers it, so a caller that has gone away
// cannot be told apart; its reply is dropped by the broker.
func (s *Sender) Reply(ctx context.Context, replyTo, correlationID string, reply message.RecrawlReply) error {
	if replyTo == "" {
		return errors.New("pipeline: reply: request has no reply_to")
	}
	body, err := message.Encode(reply)
	if err != nil {
		return err
	}
	_, err = s.send(ctx, "", replyTo, false, amqp.Publishing{
		ContentType: message.ContentTypeJSON, Type: message.TypeRecrawlReply, MessageId: reply.ID,
		CorrelationId: correlationID, Body: body,
	}, nil)
	return err
}

// Close closes the channel and waits for its listener. It does not close the Conn, unless the
// broker does not answer the channel close in time (as Publisher.Close). Safe to call more than
// once.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	g := s.gen
	s.gen = nil
	s.mu.Unlock()
	if g != nil {
		closeChannelBounded(s.conn, g.ch, s.log)
	}
	s.wg.Wait()
	return nil
}

// RPCClient sends re-crawl requests to any crawler and waits for the reply, using RabbitMQ's
// direct reply-to on its own channel (requests are persistent, mandatory and confirmed). It
// reopens its channel after a channel or connection loss; calls waiting on the lost channel
// fail with ErrReplyLost.
type RPCClient struct {
	topo    Topology
	timeout time.Duration
	log     *slog.Logger
	s       *Sender

	mu    sync.Mutex
	calls map[string]*rpcCall // by correlation id
}

type rpcCall struct {
	gen   *senderGen
	reply chan amqp.Delivery // capacity 1
}

// NewRPCClient returns a client publishing on conn to topo's recrawl queue. timeout bounds a
// Call whose context has no deadline.
func NewRPCClient(conn *Conn, topo Topology, timeout time.Duration, log *slog.Logger) *RPCClient {
	c := &RPCClient{topo: topo, timeout: timeout, log: log, calls: map[string]*rpcCall{}}
	c.s = NewSender(conn, log)
	c.s.onReply = c.deliver
	return c
}

func (c *RPCClient) deliver(g *senderGen, d amqp.Delivery) {
	c.mu.Lock()
	call := c.calls[d.CorrelationId]
	c.mu.Unlock()
	if call == nil || call.gen != g {
		c.log.Debug("rpc reply for no waiting call", "correlation_id", d.CorrelationId)
		return
	}
	select {
	case call.reply <- d:
	default: // a duplicate reply (a redelivered request answered twice)
	}
}

// Call publishes req to the recrawl queue and waits for its reply until ctx ends (or the
// client's timeout, if ctx has no deadline). The request's envelope is filled in when empty.
func (c *RPCClient) Call(ctx context.Context, req message.RecrawlRequest) (message.RecrawlReply, error) {
	if req.RequestID == "" {
		return message.RecrawlReply{}, fmt.Errorf("pipeline: rpc: %w: empty request id", ErrNotSent)
	}
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if req.Type == "" {
		req.Envelope = message.NewEnvelope(message.TypeRecrawlRequest)
	}
	body, err := message.Encode(req)
	if err != nil {
		return message.RecrawlReply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	corr := message.NewID()
	call := &rpcCall{reply: make(chan amqp.Delivery, 1)}
	defer func() {
		c.mu.Lock()
		delete(c.calls, corr)
		c.mu.Unlock()
	}()
	started := time.Now()
	g, err := c.s.send(ctx, c.topo.CrawlExchange(), KeyRecrawl, true, amqp.Publishing{
		ContentType: message.ContentTypeJSON, DeliveryMode: amqp.Persistent, Type: message.TypeRecrawlRequest,
		MessageId: req.ID, CorrelationId: corr, ReplyTo: DirectReplyTo, Body: body,
	}, func(g *senderGen) {
		call.gen = g
		c.mu.Lock()
		c.calls[corr] = call
		c.mu.Unlock()
	})
	if err != nil {
		switch {
		case errors.Is(err, ErrReturned), errors.Is(err, ErrNacked), errors.Is(err, ErrClosed):
			return message.RecrawlReply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		case g == nil: // no channel could be opened: nothing was published
			if ctx.Err() != nil {
				return message.RecrawlReply{}, fmt.Errorf("%w: %w: %w", ErrNotSent, ErrRPCTimeout, err)
			}
			return message.RecrawlReply{}, fmt.Errorf("%w: %w", ErrNotSent, err)
		case ctx.Err() != nil:
			return message.RecrawlReply{}, fmt.Errorf("%w: request %s: waiting for the broker's confirm: %w", ErrRPCTimeout, req.RequestID, err)
		}
		return message.RecrawlReply{}, fmt.Errorf("%w: request %s: %w", ErrReplyLost, req.RequestID, err)
	}
	select {
	case d := <-call.reply:
		var reply message.RecrawlReply
		if err := message.Decode(d.Body, message.TypeRecrawlReply, &reply); err != nil {
			return message.RecrawlReply{}, fmt.Errorf("pipeline: rpc: bad reply to request %s: %w", req.RequestID, err)
		}
		return reply, nil
	case <-g.dead:
		return message.RecrawlReply{}, fmt.Errorf("%w: request %s", ErrReplyLost, req.RequestID)
	case <-ctx.Done():
		return message.RecrawlReply{}, fmt.Errorf("%w: request %s: no crawler answered within %s (is a crawler running?): %w",
			ErrRPCTimeout, req.RequestID, time.Since(started).Round(time.Millisecond), ctx.Err())
	}
}

// Close closes the client's channel; calls still waiting fail with ErrReplyLost. It does not
// close the Conn. Safe to call more than once.
func (c *RPCClient) Close() error { return c.s.Close() }

// Republished is a stored message sent back to the exchange it was first published to.
type Republished struct {
	MessageID   string
	Type        string
	ContentType string
	Body        []byte
	// Headers hold plain values: strings, bools, int64s and float64s.
	Headers map[string]any
}

// Republish sends msg persistent and mandatory to exchange with key and waits for the broker's
// confirm, failing as Send does.
func (s *Sender) Republish(ctx context.Context, exchange, key string, msg Republished) error {
	return s.Send(ctx, exchange, key, amqp.Publishing{
		ContentType: msg.ContentType, DeliveryMode: amqp.Persistent, MessageId: msg.MessageID,
		Type: msg.Type, Body: msg.Body, Headers: amqp.Table(msg.Headers),
	})
}
