package service

import (
	"context"
	"log/slog"

	"github.com/trawlhq/trawl/pipeline"
)

// Broker bundles what every worker holds on RabbitMQ: a consuming connection, a separate
// publishing connection (a resource alarm blocks publishers, and consumers must keep acking
// meanwhile), a confirming publisher and the topology.
type Broker struct {
	Consume  *pipeline.Conn
	Publish  *pipeline.Conn
	Pub      *pipeline.Publisher
	Topology pipeline.Topology
}

// OpenBroker dials both connections (retrying with backoff until ctx ends) and declares the
// topology.
func OpenBroker(ctx context.Context, c Common, workerID string, log *slog.Logger) (*Broker, error) {
	topo := pipeline.Topology{Prefix: c.AMQPPrefix, DeliveryLimit: c.DeliveryLimit}
	cons, err := pipeline.NewConn(c.AMQPURL, workerID+"-consume", log)
	if err != nil {
		return nil, err
	}
	pubc, err := pipeline.NewConn(c.AMQPURL, workerID+"-publish", log)
	if err != nil {
		return nil, err
	}
	b := &Broker{Consume: cons, Publish: pubc, Pub: pipeline.NewPublisher(pubc, log), Topology: topo}
	if err := pipeline.DeclareTopology(ctx, pubc, topo); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Check is a readiness check: both connections are open.
func (b *Broker) Check(context.Context) error {
	if !b.Consume.Healthy() || !b.Publish.Healthy() {
		return errBrokerDown
	}
	return nil
}

// Close closes the publisher, then both connections. Safe to call more than once.
func (b *Broker) Close() {
	_ = b.Pub.Close()
	b.closeConns()
}

func (b *Broker) closeConns() {
	_ = b.Publish.Close()
	_ = b.Consume.Close()
}

// StartBroker opens the broker (OpenBroker) as components of l: the publisher closes in
// StageFlush, once the work that publishes through it has returned, and the connections in
// StageBroker.
func StartBroker(l *Lifecycle, c Common, workerID string, log *slog.Logger) (*Broker, error) {
	b, err := Open(l, "broker", StageBroker, func(ctx context.Context) (*Broker, error) {
		return OpenBroker(ctx, c, workerID, log)
	}, (*Broker).closeConns)
	if err != nil {
		return nil, err
	}
	l.OnStop("publisher", StageFlush, b.Pub.Close)
	return b, nil
}

type brokerDownError struct{}

func (brokerDownError) Error() string { return "broker connection is down" }

var errBrokerDown error = brokerDownError{}
