// Package chaos runs private copies of the services Trawl depends on, so that tests can stop,
// restart and starve them without touching the shared RabbitMQ and PostgreSQL that other
// tests use: a RabbitMQ node of its own (own node name, ports, Mnesia and log directories, no
// plugins) and a PostgreSQL cluster of its own (initdb in a temporary directory, own port,
// trust authentication). Everything is stopped and removed when the test ends.
package chaos

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
)

// reserved are ports that must not be handed out: the shared broker's AMQP and distribution
// ports, epmd, and the range RabbitMQ's CLI tools bind for their own Erlang distribution.
func reserved(port int) bool {
	switch {
	case port == 5672, port == 15672, port == 25672, port == 4369, port == 5432:
		return true
	case port >= 35672 && port <= 35682:
		return true
	}
	return false
}

// FreePort returns a loopback TCP port that is free now.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("chaos: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !reserved(port) {
			return port
		}
	}
	t.Fatal("chaos: no free port")
	return 0
}

// unavailable skips the test, or fails it when CI=true, when a tool is missing.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("chaos: %s (required in CI)", msg)
	}
	t.Skipf("chaos: %s", msg)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
