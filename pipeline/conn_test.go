package pipeline

import "testing"

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := redact("amqp://user:secret@host:5672/vh"); got != "amqp://user@host:5672/vh" {
		t.Fatalf("redact = %q", got)
	}
}
