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

// RPCClient sends re-crawl requests to any crawler and waits for the reply. It is a Publisher
// whose channel also consumes RabbitMQ's direct reply-to: the broker requires requests to be
// published on the channel that consumes their replies, in no-ack mode, so the reply consumer
// lives and reopens with the publishing channel rather than in a Consumer. Requests are
// persistent, mandatory and confirmed; calls waiting on a channel that is lost fail with
// ErrReplyLost, and the next call opens a new one. The server side is a Consumer of the
// recrawl queue that answers through Publisher.Reply (crawl.RecrawlServer).
type RPCClient struct {
	topo    Topology
	timeout time.Duration
	log     *slog.Logger
	pub     *Publisher

	mu    sync.Mutex
	calls map[string]*rpcCall // by correlation id
}

type rpcCall struct {
	gen   *confirmChannel
	reply chan Delivery // capacity 1
}

// NewRPCClient returns a client publishing on conn to topo's recrawl queue. timeout bounds a
// Call whose context has no deadline.
func NewRPCClient(conn *Conn, topo Topology, timeout time.Duration, log *slog.Logger) *RPCClient {
	c := &RPCClient{topo: topo, timeout: timeout, log: log, calls: map[string]*rpcCall{}}
	c.pub = NewPublisher(conn, log)
	c.pub.onReply = c.deliver
	return c
}

func (c *RPCClient) deliver(g *confirmChannel, d Delivery) {
	c.mu.Lock()
	call := c.calls[d.CorrelationID]
	c.mu.Unlock()
	if call == nil || call.gen != g {
		c.log.Debug("rpc reply for no waiting call", "correlation_id", d.CorrelationID)
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
	call := &rpcCall{reply: make(chan Delivery, 1)}
	defer func() {
		c.mu.Lock()
		delete(c.calls, corr)
		c.mu.Unlock()
	}()
	started := time.Now()
	g, waits, err := c.pub.send(ctx, []outgoing{{exchange: c.topo.CrawlExchange(), key: KeyRecrawl, mandatory: true, confirm: true,
		pub: amqp.Publishing{
			ContentType: message.ContentTypeJSON, DeliveryMode: amqp.Persistent, Type: message.TypeRecrawlRequest,
			MessageId: req.ID, CorrelationId: corr, ReplyTo: DirectReplyTo, Body: body,
		}}}, func(g *confirmChannel) {
		call.gen = g
		c.mu.Lock()
		c.calls[corr] = call
		c.mu.Unlock()
	})
	if err == nil {
		err = waits[0].wait(ctx)
	}
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
func (c *RPCClient) Close() error { return c.pub.Close() }
