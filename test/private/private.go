// Package private runs private copies of the services Trawl depends on, so that tests can stop,
// restart and starve them without touching the shared RabbitMQ and PostgreSQL that other
// tests use: a RabbitMQ node of its own (own node name, ports, Mnesia and log directories, no
// plugins) and a PostgreSQL cluster of its own (initdb in a temporary directory, own port,
// trust authentication). Everything is stopped and removed when the test ends.
package private

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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

// FreePort returns a loopback TCP port that is free now, below the kernel's ephemeral range. A
// private service's port must not be one that outgoing connections can get: while the service
// is stopped, a worker reconnecting to it could be given that very port as its own end (Linux
// then connects the socket to itself) and hold it, so the service could not listen again.
func FreePort(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow("/proc/sys/net/ipv4/ip_local_port_range")
	for range 200 {
		port := 10000 + rand.IntN(max(lo-10000, 1))
		if reserved(port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		l.Close()
		return port
	}
	t.Fatal("chaos: no free port below the ephemeral range")
	return 0
}

// ephemeralLow reads the first port of the ephemeral range from path (ip_local_port_range), or
// returns 32768, Linux's default, when it cannot. Below 11000 it is taken as 11000 (FreePort
// picks from 10000 up).
func ephemeralLow(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return max(lo, 11000)
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
