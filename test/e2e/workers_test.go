package e2e

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/test/harness"
	"github.com/trawlhq/trawl/test/testenv"
)

// TestWorkersHeartbeatAndHealth: every worker announces itself on the events exchange, answers
// its healthcheck subcommand, and says goodbye (a last heartbeat) when it stops on SIGTERM.
func TestWorkersHeartbeatAndHealth(t *testing.T) {
	t.Parallel()
	sys := NewSystem(t)
	_, raw := testenv.Broker(t)
	ch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The workers declare the events exchange; bind once it exists.
	workers := sys.StartAll(2, 1)
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, "events exchange", func() bool {
		c, err := raw.Channel()
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ExchangeDeclarePassive(sys.Topo.EventsExchange(), "topic", true, false, false, false, nil) == nil
	})
	if err := ch.QueueBind(q.Name, "worker.heartbeat.#", sys.Topo.EventsExchange(), false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]message.Heartbeat{}
	deadline := time.After(20 * time.Second)
	for len(seen) < 3 {
		select {
		case d := <-deliveries:
			var hb message.Heartbeat
			if err := message.Decode(d.Body, message.TypeHeartbeat, &hb); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			if hb.IntervalMS > 0 {
				seen[hb.WorkerID] = hb
			}
		case <-deadline:
			t.Fatalf("saw heartbeats from %d workers, want 3: %v", len(seen), seen)
		}
	}
	kinds := map[string]int{}
	for _, hb := range seen {
		kinds[hb.Kind]++
		if hb.Host == "" || hb.Version == "" || hb.Concurrency == 0 || hb.StartedAt.IsZero() {
			t.Errorf("incomplete heartbeat: %+v", hb)
		}
	}
	if kinds["crawler"] != 2 || kinds["processor"] != 1 {
		t.Fatalf("heartbeat kinds = %v, want 2 crawlers and 1 processor", kinds)
	}

	for _, w := range workers {
		bin := "crawler"
		if w == workers[2] {
			bin = "processor"
		}
		cmd := exec.Command(harness.BinDir+"/"+bin, "healthcheck")
		cmd.Env = []string{"TRAWL_HEALTH_ADDR=" + w.HealthAddr}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s healthcheck: %v %s", w.Name, err, out)
		}
	}

	// A stopping worker sends a last heartbeat with interval 0, so dashboards drop it at once.
	sys.Stop(workers[0], 20*time.Second)
	deadline = time.After(10 * time.Second)
	for {
		select {
		case d := <-deliveries:
			var hb message.Heartbeat
			if json.Unmarshal(d.Body, &hb) == nil && hb.IntervalMS == 0 {
				return
			}
		case <-deadline:
			t.Fatal("no farewell heartbeat after SIGTERM")
		}
	}
}
