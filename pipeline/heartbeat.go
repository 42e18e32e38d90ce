package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/trawlhq/trawl/message"
)

// HeartbeatKey is the events routing key of a worker kind's heartbeats.
func HeartbeatKey(kind string) string { return "worker.heartbeat." + kind }

// RunHeartbeats emits the heartbeat that state returns every interval until ctx ends, and a
// last one marked with zero interval as the worker stops.
func RunHeartbeats(ctx context.Context, pub *Publisher, topo Topology, interval time.Duration, log *slog.Logger, state func() message.Heartbeat) {
	emit := func(ctx context.Context, last bool) {
		hb := state()
		hb.Envelope = message.NewEnvelope(message.TypeHeartbeat)
		hb.IntervalMS = interval.Milliseconds()
		if last {
			hb.IntervalMS = 0
		}
		body, err := message.Encode(hb)
		if err != nil {
			return
		}
		if err := pub.Emit(ctx, topo.EventsExchange(), HeartbeatKey(hb.Kind), message.Encoded{ID: hb.ID, Type: message.TypeHeartbeat, Body: body}); err != nil {
			log.Debug("heartbeat not sent", "err", err)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		emit(ctx, false)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			emit(sctx, true)
			cancel()
			return
		case <-t.C:
		}
	}
}

// DeclareTopology declares topo on a short-lived channel of conn, retrying until the broker
// answers or ctx ends.
func DeclareTopology(ctx context.Context, conn *Conn, topo Topology) error {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := topo.Declare(ch); err != nil {
		return fmt.Errorf("pipeline: declare topology: %w", err)
	}
	return nil
}
