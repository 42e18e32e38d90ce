// Package pipeline is Trawl's messaging layer on RabbitMQ: the topology (quorum work queues with
// delivery limits and dead-lettering, an events topic exchange), versioned JSON messages,
// a publisher that waits for confirms and treats returned (unroutable) messages as failures,
// and a consumer with manual acks and prefetch. Connections reconnect with backoff; deliveries
// are always acked on the channel that delivered them, never on a newer one.
package pipeline
