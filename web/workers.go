package web

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/trawlhq/trawl/message"
	"github.com/trawlhq/trawl/pipeline"
)

// Workers tracks live crawler and processor instances from their heartbeats. A worker is
// dropped once it has been silent for MissedBeats heartbeat intervals, or at once when it says
// goodbye (a heartbeat with zero interval).
type Workers struct {
	mu   sync.Mutex
	seen map[string]WorkerInfo
	now  func() time.Time
}

// MissedBeats is how many heartbeat intervals a worker may miss before it is dropped.
const MissedBeats = 3

// WorkerInfo is one live worker.
type WorkerInfo struct {
	message.Heartbeat
	LastSeen time.Time
	// Rate is how many pages it processed (fetches finished by a crawler, results persisted by a
	// processor) per second between its last two heartbeats; HasRate is false until there are two.
	Rate    float64
	HasRate bool
}

// NewWorkers returns an empty registry using clock now (time.Now when nil).
func NewWorkers(now func() time.Time) *Workers {
	if now == nil {
		now = time.Now
	}
	return &Workers{seen: map[string]WorkerInfo{}, now: now}
}

// Observe records a heartbeat.
func (w *Workers) Observe(hb message.Heartbeat) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if hb.IntervalMS <= 0 {
		delete(w.seen, hb.WorkerID)
		return
	}
	wi := WorkerInfo{Heartbeat: hb, LastSeen: w.now()}
	if prev, ok := w.seen[hb.WorkerID]; ok {
		wi.Rate, wi.HasRate = prev.Rate, prev.HasRate
		if r, ok := rateBetween(prev, wi); ok {
			wi.Rate, wi.HasRate = r, true
		}
	}
	w.seen[hb.WorkerID] = wi
}

// rateBetween is the processed count's growth per second from one heartbeat of a worker to the
// next, timed by the worker's clock (the heartbeats' stamps: when each count was taken) or, when
// a stamp is missing, by when they arrived. It has none when the worker restarted in between
// (another start time, or a count that went down) or no time passed.
func rateBetween(prev, cur WorkerInfo) (float64, bool) {
	if !cur.StartedAt.Equal(prev.StartedAt) || cur.Processed < prev.Processed {
		return 0, false
	}
	dt := cur.TS.Sub(prev.TS)
	if cur.TS.IsZero() || prev.TS.IsZero() {
		dt = cur.LastSeen.Sub(prev.LastSeen)
	}
	if dt <= 0 {
		return 0, false
	}
	return float64(cur.Processed-prev.Processed) / dt.Seconds(), true
}

// List returns the live workers sorted by kind then id, forgetting those that went silent.
func (w *Workers) List() []WorkerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	out := make([]WorkerInfo, 0, len(w.seen))
	for id, wi := range w.seen {
		if now.Sub(wi.LastSeen) > time.Duration(MissedBeats*wi.IntervalMS)*time.Millisecond {
			delete(w.seen, id)
			continue
		}
		out = append(out, wi)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].WorkerID < out[j].WorkerID
	})
	return out
}

// Run subscribes to heartbeats on the events exchange with an exclusive, auto-delete queue and
// feeds them into w until ctx ends; the subscription is renewed with backoff when the broker
// goes away (pipeline.Consumer).
func (w *Workers) Run(ctx context.Context, conn *pipeline.Conn, topo pipeline.Topology, log *slog.Logger) {
	sub := &pipeline.Consumer{Conn: conn, Events: pipeline.HeartbeatKey("*"), Prefetch: 100, Topology: topo, Log: log}
	_ = sub.Run(ctx, func(ds pipeline.Deliveries) {
		for d := range ds {
			var hb message.Heartbeat
			if err := message.Decode(d.Body, message.TypeHeartbeat, &hb); err == nil && hb.WorkerID != "" {
				w.Observe(hb)
			}
			_ = d.Ack(false)
		}
	})
}
