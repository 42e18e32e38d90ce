// Package message is the contract between Trawl's workers: the messages they exchange over the
// broker, how each is encoded and decoded, and the limits every reader enforces. Both sides
// import it; it imports no other package of Trawl's and knows nothing of AMQP.
//
// Every message is versioned JSON with a common Envelope (type, version, id, time). A reader
// refuses a message of another type, of a version it does not know, without an id, or larger
// than MaxMessageBytes; every such refusal wraps ErrPermanent, so the consumer dead-letters it
// at once instead of redelivering it.
//
// The messages:
//   - crawl.job (CrawlJob), and crawl.jobs (CrawlJobs, up to MaxJobsPerMessage jobs): the
//     scheduler asks a crawler to fetch URLs it has leased. JobMessages encodes a batch.
//   - fetch.result (FetchResult): a crawler reports one fetch. Its text travels in a frame
//     (EncodeFetchResult), not as JSON; up to MaxResultsPerMessage pages' results travel as one
//     fetch.results message (PackResults, UnpackResults).
//   - worker.heartbeat (Heartbeat): every worker says it is alive and what it is doing.
//   - recrawl.request and recrawl.reply (RecrawlRequest, RecrawlReply): the dashboard asks a
//     crawler to fetch one URL now and waits for the answer.
//
// Encode and Decode never change a message's meaning: a message decodes to what was encoded,
// and the id a writer stamps (NewEnvelope) is the AMQP message id that deduplicates it.
package message
