package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/internal/backoff"
	"github.com/trawlhq/trawl/metrics"
)

// ErrClosed is returned by a Conn, Publisher or Consumer used after Close.
var ErrClosed = errors.New("pipeline: closed")

// closeTimeout bounds every close handshake with the broker.
const closeTimeout = 5 * time.Second

// Conn is one logical AMQP connection that redials with backoff when the broker goes away.
// Use one Conn for publishing and another for consuming: a memory or disk alarm blocks
// publishing connections, and consumers must keep acking while it lasts.
type Conn struct {
	urls []string
	name string
	log  *slog.Logger

	dialMu sync.Mutex // serialises dialing; never held with mu by anyone but Connection
	done   chan struct{}

	mu      sync.Mutex
	conn    *amqp.Connection
	next    int // index of the next URL to dial
	closed  bool
	blocked bool
	dialed  bool // a connection was made before: the next one is a reconnect
	wg      sync.WaitGroup
}

// NewConn returns a Conn for the comma-separated broker URLs. It does not connect until first use:
// the first call that needs the broker dials it.
func NewConn(urls, name string, log *slog.Logger) (*Conn, error) {
	var list []string
	for u := range strings.SplitSeq(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			if _, err := amqp.ParseURI(u); err != nil {
				return nil, fmt.Errorf("pipeline: broker url: %w", err)
			}
			list = append(list, u)
		}
	}
	if len(list) == 0 {
		return nil, errors.New("pipeline: no broker url")
	}
	return &Conn{urls: list, name: name, log: log.With("conn", name), done: make(chan struct{})}, nil
}

// Connection returns the live connection, dialing (with backoff, across every URL in turn)
// until it succeeds or ctx ends.
func (c *Conn) Connection(ctx context.Context) (*amqp.Connection, error) {
	if conn, err := c.current(); conn != nil || err != nil {
		return conn, err
	}
	c.dialMu.Lock()
	defer c.dialMu.Unlock()
	for attempt := 0; ; attempt++ {
		if conn, err := c.current(); conn != nil || err != nil {
			return conn, err
		}
		c.mu.Lock()
		u := c.urls[c.next%len(c.urls)]
		c.next++
		c.mu.Unlock()
		cfg := amqp.Config{
			Heartbeat:  10 * time.Second,
			Locale:     "en_US",
			Properties: amqp.Table{"connection_name": c.name},
			Dial:       amqp.DefaultDial(10 * time.Second),
		}
		conn, err := amqp.DialConfig(u, cfg)
		if err == nil {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = conn.Close()
				return nil, ErrClosed
			}
			c.conn = conn
			if c.dialed {
				metrics.Reconnects.Inc()
			}
			c.dialed = true
			c.watch(conn)
			c.mu.Unlock()
			if attempt > 0 {
				c.log.Info("broker connected", "attempts", attempt+1, "broker", redact(u))
			}
			return conn, nil
		}
		delay := backoff.Delay(attempt, 100*time.Millisecond, 10*time.Second)
		c.log.Warn("broker unreachable, retrying", "err", err, "attempt", attempt+1,
			"retry_in", delay.String(), "broker", redact(u))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pipeline: dial: %w", ctx.Err())
		case <-c.done:
			return nil, ErrClosed
		case <-time.After(delay):
		}
	}
}

// current returns the open connection, or ErrClosed, or nil and nil when a dial is needed.
func (c *Conn) current() (*amqp.Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn != nil && !c.conn.IsClosed() {
		return c.conn, nil
	}
	return nil, nil
}

// watch logs blocked/unblocked notifications until conn closes. The notification channel must
// be drained, or the library's reader would stall.
func (c *Conn) watch(conn *amqp.Connection) {
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	c.wg.Go(func() {
		for {
			select {
			case b, ok := <-blocked:
				if !ok {
					blocked = nil
					continue
				}
				c.mu.Lock()
				c.blocked = b.Active
				c.mu.Unlock()
				if b.Active {
					c.log.Warn("broker blocked this connection", "reason", b.Reason)
				} else {
					c.log.Info("broker unblocked this connection")
				}
			case err, ok := <-closed:
				if ok && err != nil {
					c.log.Warn("broker connection lost", "err", err)
				}
				c.mu.Lock()
				c.blocked = false
				c.mu.Unlock()
				return
			}
		}
	})
}

// Blocked reports whether the broker has blocked this connection (a resource alarm).
func (c *Conn) Blocked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blocked
}

// Healthy reports whether the connection is currently open.
func (c *Conn) Healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.conn.IsClosed()
}

// Channel opens a new channel on the live connection.
func (c *Conn) Channel(ctx context.Context) (*amqp.Channel, error) {
	for attempt := 0; ; attempt++ {
		conn, err := c.Connection(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := conn.Channel()
		if err == nil {
			return ch, nil
		}
		if errors.Is(err, amqp.ErrClosed) && attempt < 3 {
			continue // the connection died between the check and the open: redial
		}
		return nil, fmt.Errorf("pipeline: open channel: %w", err)
	}
}

// drop cuts the current connection without closing the Conn: the next use redials. A write
// stuck on it (the broker is not reading a blocked connection) fails at once.
func (c *Conn) drop() {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		c.log.Warn("cutting the broker connection: a publish outlived its context")
		_ = conn.CloseDeadline(time.Now())
	}
}

// Close closes the connection. It is safe to call more than once.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	conn := c.conn
	timeout := closeTimeout
	if c.blocked {
		timeout = 100 * time.Millisecond // the broker is not reading this connection
	}
	c.mu.Unlock()
	var err error
	if conn != nil && !conn.IsClosed() {
		// The deadline bounds the close handshake: a blocked or unresponsive broker never
		// answers it, and the socket is closed anyway when the deadline passes.
		err = conn.CloseDeadline(time.Now().Add(timeout))
	}
	c.wg.Wait()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("pipeline: close %s: %w", c.name, err)
	}
	return nil
}

func redact(u string) string {
	uri, err := amqp.ParseURI(u)
	if err != nil {
		return "invalid"
	}
	uri.Password = ""
	return fmt.Sprintf("%s://%s@%s:%d/%s", uri.Scheme, uri.Username, uri.Host, uri.Port, strings.TrimPrefix(uri.Vhost, "/"))
}
