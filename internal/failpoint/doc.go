// Package failpoint stops a process at a named point, so that chaos tests can crash a worker
// exactly between two steps (after a database commit and before the ack, say).
//
// Failpoints exist only in binaries built with the "failpoint" build tag. There, the
// environment variable TRAWL_FAILPOINTS lists the points to arm, comma-separated, each
// optionally with the hit that fires it: "processor-after-commit=3" exits on the third time
// the point is reached. Firing prints one line to stderr and exits with status 137, the status
// of a process killed by SIGKILL, without running deferred functions or closing connections.
//
// Without the tag, Inject is an empty function the compiler removes: production binaries
// carry no failpoint and read no failpoint variable.
package failpoint

// Names of the failpoints placed in the code.
const (
	// ProcessorAfterCommit sits in the processor after a batch's transaction has committed and
	// before its deliveries are acked.
	ProcessorAfterCommit = "processor-after-commit"
	// PublishBeforeConfirm sits in the publisher after messages were sent and before their
	// confirms are awaited.
	PublishBeforeConfirm = "publish-before-confirm"
	// CrawlerAfterConfirm sits in the crawler after the broker confirmed a fetch result and
	// before the job is acked.
	CrawlerAfterConfirm = "crawler-after-confirm"
)

// Env is the environment variable that arms failpoints in builds with the failpoint tag.
const Env = "TRAWL_FAILPOINTS"
