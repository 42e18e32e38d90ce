package web

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the dashboard starts (SSE streams, heartbeat subscriptions) has an owner
// that stops it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
