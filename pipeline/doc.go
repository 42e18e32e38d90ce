// Package pipeline is Trawl's messaging layer, and the only package that speaks AMQP
// (TestOnlyPipelineImportsAMQP). The message contract itself (envelopes, jobs, results,
// heartbeats, RPC messages, encoding and limits) is package message; pipeline moves those
// messages through RabbitMQ:
//
//   - Topology: quorum work queues with delivery limits and dead-lettering, an events topic
//     exchange, all under a prefix.
//   - Conn: one logical connection that redials with backoff across the broker URLs. Workers
//     publish and consume on separate Conns: a resource alarm blocks publishing connections,
//     and consumers must keep acking while it lasts.
//   - Publisher: the one way to publish. A confirmed publish returns nil only once the broker
//     has confirmed the message; a return, a nack or a lost channel fails it. Publishes are
//     pipelined on one channel and matched to their confirms by delivery tag. Context expiry
//     ends the call, never the channel's other publishes nor the connection, except that a write
//     the broker will not read (a blocked connection) is cut so shutdown stays bounded.
//   - Consumer: the one consume loop, for a queue or a private events subscription, with
//     manual acks and prefetch, reopening its channel with backoff.
//   - Delivery: what a consumer hands out. It settles itself on the channel that delivered it,
//     never on a newer one: Ack, Requeue and Reject at once; Done through the channel's
//     Settler, which acks done deliveries together with one multiple-ack once every earlier
//     one is settled. Settle after the work is committed and anything it published is
//     confirmed (ack after commit, confirm before ack).
//   - Split: replaces a delivery of several jobs or results by one message each, acking it
//     only once they are confirmed.
//   - RPCClient: re-crawl requests over direct reply-to, on a Publisher's channel; the server
//     is a Consumer of the recrawl queue answering with Publisher.Reply.
//
// The decisions are docs/adr/0047-pipeline-delivery.md and docs/adr/0048-one-publisher.md.
package pipeline
