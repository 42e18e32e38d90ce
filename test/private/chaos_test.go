package private

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/trawlhq/trawl/test/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRabbitStopStart: the private node accepts connections, refuses them while stopped, keeps
// a durable quorum queue's messages across the stop, and raises the memory alarm on demand.
func TestRabbitStopStart(t *testing.T) {
	t.Parallel()
	r := StartRabbit(t)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(r.Log(), "Server startup complete"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node log does not show the start-up:\n%s", testenv.Tail(r.Log(), 20))
		}
	}
	conn, err := amqp.Dial(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirm, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", "q", true, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := confirm.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("confirm = %v, %v", ok, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	r.Stop()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("connection still open after Stop")
	}
	if c, err := amqp.Dial(r.URL()); err == nil {
		c.Close()
		t.Fatal("dial succeeded while the node is stopped")
	}
	r.Start()
	conn, err = amqp.Dial(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 2))
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var got amqp.Delivery
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		d, ok, err := ch.Get("q", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got = d
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message lost across stop/start")
		}
	}
	if string(got.Body) != "kept" {
		t.Fatalf("body = %q", got.Body)
	}
	r.SetMemoryWatermark("0.0000001")
	// The alarm blocks a connection once it publishes.
	_ = ch.Publish("", "q", false, false, amqp.Publishing{Body: []byte("x")})
	select {
	case b := <-blocked:
		if !b.Active {
			t.Fatalf("first notification = %+v, want blocked", b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connection.blocked after the memory alarm")
	}
	r.SetMemoryWatermark("0.4")
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("second notification = %+v, want unblocked", b)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connection.unblocked after clearing the alarm")
	}
}

// TestPostgresRestart: the private cluster serves a migrated database, terminates sessions on
// restart (57P01) and serves again after it.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	p := StartPostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dsn, err := p.Database(ctx, "trawl_chaos")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM targets").Scan(&n); err != nil || n != 0 {
		t.Fatalf("targets = %d, %v", n, err)
	}
	p.Restart()
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err == nil {
		t.Fatal("old session survived the restart")
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM targets").Scan(&n); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	t.Parallel()
	lo := ephemeralLow("/proc/sys/net/ipv4/ip_local_port_range")
	for range 20 {
		if p := FreePort(t); p < 10000 || p >= lo || reserved(p) {
			t.Fatalf("FreePort = %d, want in [10000, %d) and not reserved", p, lo)
		}
	}
	dir := t.TempDir()
	for content, want := range map[string]int{"32768\t60999\n": 32768, "40000 50000": 40000, "1024 65000": 11000, "": 32768, "x y": 32768} {
		p := filepath.Join(dir, "range")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := ephemeralLow(p); got != want {
			t.Errorf("ephemeralLow(%q) = %d, want %d", content, got, want)
		}
	}
	if got := ephemeralLow(filepath.Join(dir, "missing")); got != 32768 {
		t.Errorf("missing file: %d", got)
	}
}
