package chaos

import (
	"syscall"
	"testing"
	"time"

	"github.com/trawlhq/trawl/test/private"
)

// TestSIGTERMDuringMemoryAlarm stops every worker while the broker blocks their publishing
// connections: a close handshake the broker will not answer must not keep a worker from
// exiting within its shutdown bound, and the crawl must still finish once the alarm clears.
// (A publish stuck in the middle of a write is covered by pipeline's TestPublishCutsBlockedWrite.)
func TestSIGTERMDuringMemoryAlarm(t *testing.T) {
	t.Parallel()
	const bound = 5 * time.Second
	rabbit := private.StartRabbit(t)
	r, workers := privateBrokerRun(t, "sigterm-during-memory-alarm", rabbit, rabbit.URL(), "TRAWL_SHUTDOWN_TIMEOUT="+bound.String())
	rabbit.SetMemoryWatermark("0.0000001")
	for _, w := range workers {
		waitLog(t, time.Minute, w, "broker blocked this connection")
	}
	time.Sleep(2 * time.Second) // let publishes pile up on the blocked connections
	start := time.Now()
	for _, w := range workers {
		if err := w.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range workers {
		code, ok := w.Wait(bound + 15*time.Second)
		if !ok {
			_ = w.Signal(syscall.SIGQUIT) // the Go runtime prints every goroutine's stack
			w.Wait(10 * time.Second)
			t.Fatalf("%s still running %s after SIGTERM during the alarm (bound %s):\n%s", w.Name, time.Since(start), bound, w.Output())
		}
		if code != 0 {
			t.Errorf("%s exited with %d after SIGTERM during the alarm, want 0", w.Name, code)
		}
	}
	t.Logf("all workers exited within %s of SIGTERM during the alarm", time.Since(start).Round(time.Millisecond))
	rabbit.SetMemoryWatermark("0.4")
	r.restartAndFinish()
}
