package process_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/metrics"
	"github.com/trawlhq/trawl/pipeline"
	"github.com/trawlhq/trawl/process"
	"github.com/trawlhq/trawl/store"
	"github.com/trawlhq/trawl/test/testenv"
)

// logLines returns the JSON log lines of buf whose msg is msg.
func logLines(t *testing.T, buf *testenv.SyncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			delete(m, "time")
			out = append(out, m)
		}
	}
	return out
}

// TestProcessorDropsResultsOfDeletedTargets runs results of a target being deleted through a real
// broker and database, in one batch with the last result of another target: they are acked and
// dropped (counted, nothing dead-lettered or left in the queue), the other target finishes and
// its completion is logged once with its counters, and the deleter then removes the deleted
// target.
func TestProcessorDropsResultsOfDeletedTargets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const n = 4
	fx := newProcessorFixture(t, "dropdeleted", n)
	fin := createTarget(t, fx.s, "finishes")
	seed, err := fx.s.Dispatch(ctx, store.DispatchLimits{MaxInFlight: 10, HostMaxInFlight: 10, Hosts: 10, Lease: time.Hour})
	if err != nil || len(seed) != 1 || seed[0].TargetID != fin.ID {
		t.Fatalf("Dispatch = %v, %v; want the seed of the second target", seed, err)
	}
	if _, err := fx.s.DeleteTarget(ctx, fx.tg.ID); err != nil {
		t.Fatal(err)
	}
	var msgs []message.Encoded
	for _, j := range append(fx.jobs, seed[0]) {
		fr := message.FetchResult{Envelope: message.NewEnvelope(message.TypeFetchResult), Kind: message.KindPage,
			URLID: j.URLID, TargetID: j.TargetID, URL: j.URL, Depth: j.Depth, Dispatch: j.Dispatch, Worker: "test",
			Status: 200, ContentType: "text/html", Text: "text of " + j.URL, ContentHash: j.URL, StartedAt: time.Now()}
		body, err := message.EncodeFetchResult(fr)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, message.Encoded{ID: fr.ID, Type: fr.Type, Body: body})
	}
	if err := fx.pub.Publish(ctx, fx.topo.PagesExchange(), pipeline.KeyPage, msgs...); err != nil {
		t.Fatal(err)
	}
	dropped := testutil.ToFloat64(metrics.ResultsPersisted.WithLabelValues("dropped"))

	var logs testenv.SyncBuffer
	proc := &process.Processor{Store: fx.s, Policy: fx.pol, BatchSize: 16, BatchWait: 50 * time.Millisecond,
		Pub: fx.pub, Topology: fx.topo, Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	cons := &pipeline.Consumer{Conn: fx.conn, Queue: fx.topo.PagesQueue(), Prefetch: 16, Topology: fx.topo, Log: testenv.Logger(t)}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = cons.Run(runCtx, func(d pipeline.Deliveries) { proc.Serve(runCtx, d) }) })
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, "every result acked", func() bool {
		return proc.Processed() == n+1
	})
	stop()
	wg.Wait()

	if d := testenv.QueueDepth(t, fx.raw, fx.topo.PagesQueue()); d != 0 {
		t.Errorf("pages queue holds %d messages, want 0 (all acked)", d)
	}
	if d := testenv.QueueDepth(t, fx.raw, fx.topo.DeadLetterQueue()); d != 0 {
		t.Errorf("%d results of the deleted target were dead-lettered", d)
	}
	if got := testutil.ToFloat64(metrics.ResultsPersisted.WithLabelValues("dropped")) - dropped; got < n {
		t.Errorf("dropped results counted %v, want at least %d", got, n)
	}
	gone, err := fx.s.Target(ctx, fx.tg.ID)
	if err != nil || gone.State != store.TargetDeleting || gone.URLsDone != 1 {
		t.Errorf("deleted target = %+v, %v; want it deleting with only its seed done", gone, err)
	}
	want := []map[string]any{{"level": "INFO", "msg": "target done", "target_id": float64(fin.ID), "urls": 1.0, "done": 1.0,
		"failed": 0.0, "cancelled": 0.0}}
	if diff := cmp.Diff(want, logLines(t, &logs, "target done")); diff != "" {
		t.Errorf("target done log lines (-want +got):\n%s", diff)
	}

	d := &process.Deleter{Store: fx.s, Batch: 2, Log: slog.New(slog.NewJSONHandler(&logs, nil))}
	if got := d.Sweep(ctx); got != 1 {
		t.Errorf("Sweep finished %d targets, want 1", got)
	}
	if _, err := fx.s.Target(ctx, fx.tg.ID); err == nil {
		t.Errorf("the deleted target is still there after the deleter's sweep")
	}
	if got := logLines(t, &logs, "target deleted"); len(got) != 1 || got[0]["target_id"] != float64(fx.tg.ID) || got[0]["rows"].(float64) < n+1 {
		t.Errorf("target deleted log lines = %v, want one for target %d", got, fx.tg.ID)
	}
	if got, err := fx.s.Target(ctx, fin.ID); err != nil || got.State != store.TargetDone {
		t.Errorf("other target = %+v, %v; want done", got, err)
	}
}
