// Package testenv gives integration tests their own isolated slice of the real services: a
// fresh, migrated PostgreSQL database and a unique RabbitMQ name prefix, both removed when the
// test ends. Services are found through TEST_DATABASE_URL and TEST_AMQP_URL (localhost
// defaults). When CI=true a missing service fails the test instead of skipping it.
package testenv

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/store"
)

// AdminDatabaseURL is the server used to create per-test databases.
func AdminDatabaseURL() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// AMQPURL is the broker tests use.
func AMQPURL() string {
	if v := os.Getenv("TEST_AMQP_URL"); v != "" {
		return v
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// unavailable skips the test, or fails it under CI, when a service cannot be reached.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI but unreachable: %v", what, err)
	}
	t.Skipf("%s unreachable (set CI=true to fail instead): %v", what, err)
}

// Name returns a short unique lowercase name with the given prefix.
func Name(prefix string) string {
	return prefix + message.NewID()[:10]
}

// Logger returns a logger that writes to the test log, or discards when -v is off.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Database creates an empty database for this test and returns its URL. The database is dropped
// when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	return createDatabase(t, "")
}

// DatabaseFrom creates a database for this test as a file copy of the one at templateURL, which
// nobody may be connected to, and returns its URL; it is dropped when the test ends. Copying a
// large seeded database this way takes seconds where loading it again takes minutes.
func DatabaseFrom(t testing.TB, templateURL string) string {
	t.Helper()
	u, err := url.Parse(templateURL)
	if err != nil {
		t.Fatalf("template database URL: %v", err)
	}
	return createDatabase(t, " TEMPLATE "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" STRATEGY FILE_COPY")
}

// createDatabase creates a database with the given CREATE DATABASE options, drops it when the
// test ends and returns its URL.
func createDatabase(t testing.TB, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminDatabaseURL())
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	defer admin.Close(ctx)
	name := Name("trawl_t_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+options); err != nil {
		t.Fatalf("create database: %v", err)
	}
	dropAtEnd(t, name)
	return databaseURL(t, name)
}

// dropAtEnd drops database name when the test ends.
func dropAtEnd(t testing.TB, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminDatabaseURL())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
}

// databaseURL returns the URL of database name on the test server.
func databaseURL(t testing.TB, name string) string {
	t.Helper()
	u, err := url.Parse(AdminDatabaseURL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Store creates a migrated database for this test, a copy of a template that holds every
// migration, and opens it. The database is dropped when the test ends.
func Store(t testing.TB) (*store.Store, string) {
	t.Helper()
	dsn := migratedDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn, 8, Logger(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s, dsn
}

// Broker returns a topology under a unique prefix, declared on the test broker, and a raw
// connection for the test's own inspection. Queues and exchanges are deleted when the test ends.
func Broker(t testing.TB) (pipeline.Topology, *amqp.Connection) {
	t.Helper()
	conn, err := amqp.Dial(AMQPURL())
	if err != nil {
		unavailable(t, "RabbitMQ", err)
	}
	topo := pipeline.Topology{Prefix: Name("t") + ".", DeliveryLimit: 3}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	if err := topo.Declare(ch); err != nil {
		t.Fatalf("declare: %v", err)
	}
	t.Cleanup(func() {
		defer conn.Close()
		deleteTopology(t, conn, topo)
	})
	return topo, conn
}

// DeleteTopologyAtEnd deletes topo's queues and exchanges from the test broker when the test
// ends, for a topology declared by someone else (the processes a test starts, say).
func DeleteTopologyAtEnd(t testing.TB, topo pipeline.Topology) {
	t.Cleanup(func() {
		conn, err := amqp.Dial(AMQPURL())
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		deleteTopology(t, conn, topo)
	})
}

func deleteTopology(t testing.TB, conn *amqp.Connection, topo pipeline.Topology) {
	ch, err := conn.Channel()
	if err != nil {
		t.Errorf("cleanup channel: %v", err)
		return
	}
	defer ch.Close()
	if err := topo.Delete(ch); err != nil {
		t.Errorf("cleanup topology: %v", err)
	}
}

// Dial opens a pipeline connection named name to the test broker, closed when the test ends.
func Dial(t testing.TB, name string) *pipeline.Conn {
	t.Helper()
	c, err := pipeline.NewConn(AMQPURL(), name, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Get waits up to 20 s for a message on queue and takes it with a basic.get on a channel of
// conn. With autoAck false the caller must ack, nack or reject the delivery; its channel stays
// open until the test ends.
func Get(t testing.TB, conn *amqp.Connection, queue string, autoAck bool) amqp.Delivery {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if autoAck {
		defer ch.Close()
	} else {
		t.Cleanup(func() { _ = ch.Close() })
	}
	var d amqp.Delivery
	Eventually(t, 20*time.Second, 20*time.Millisecond, "a message on "+queue, func() bool {
		var ok bool
		d, ok, err = ch.Get(queue, autoAck)
		if err != nil {
			t.Fatalf("get %s: %v", queue, err)
		}
		return ok
	})
	return d
}

// XDeath returns the reason and the queue of a dead letter's first x-death entry, failing the
// test when there is none.
func XDeath(t testing.TB, d amqp.Delivery) (reason, queue string) {
	t.Helper()
	deaths, ok := d.Headers["x-death"].([]any)
	if !ok || len(deaths) == 0 {
		t.Fatalf("no x-death header: %v", d.Headers)
	}
	first, _ := deaths[0].(amqp.Table)
	reason, _ = first["reason"].(string)
	queue, _ = first["queue"].(string)
	return reason, queue
}

// QueueDepth returns the ready message count of queue, via a passive declare.
func QueueDepth(t testing.TB, conn *amqp.Connection, queue string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %s: %v", queue, err)
	}
	return q.Messages
}

// Eventually polls cond every interval until it returns true or timeout passes.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}

// SyncBuffer collects a child process's output; it is safe for concurrent writes and reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n lines of s, for failure messages.
func Tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
