package mutate

// Edit replaces Old, which must occur exactly once in the file, with New.
type Edit struct {
	Old, New string
}

// Check is one `go test` run that must fail on the mutated code: Run (a -run pattern) in
// Package, with optional build Tags and extra environment (NAME=value).
type Check struct {
	Package string
	Run     string
	Tags    string
	Env     []string
}

// Mutation breaks one promise in one file.
type Mutation struct {
	// Name identifies the mutation: `make mutate MUTATE_RUN=<name>` checks it alone.
	Name string
	// Breaks says, in a sentence, which promise the mutation breaks.
	Breaks string
	// File is the path of the file to edit, from the repository's root.
	File  string
	Edits []Edit
	// Caught lists the runs that must fail; each must fail for the mutation to count as caught.
	Caught []Check
}

// Mutations is the table `make mutate` checks. Append a row for each promise a suite is meant
// to guard; keep each edit small and its Old text distinctive.
var Mutations = []Mutation{
	{
		Name:   "ack-before-commit",
		Breaks: "the processor acks a batch before its transaction commits",
		File:   "process/processor.go",
		Edits: []Edit{
			{Old: "\tfor attempt := 0; ; attempt++ {\n", New: "\tp.ack(ctx, batch) // MUTATION: ack before the commit\n\tfor attempt := 0; ; attempt++ {\n"},
			{Old: "\t\t\tfailpoint.Inject(failpoint.ProcessorAfterCommit)\n\t\t\tp.ack(ctx, batch)\n", New: "\t\t\tfailpoint.Inject(failpoint.ProcessorAfterCommit)\n"},
		},
		Caught: []Check{
			{Package: "./process/", Run: "^TestProcessorWaitsOutADatabaseOutage$"},
			{Package: "./test/chaos/", Run: "^TestKillProcessor$"},
		},
	},
	{
		Name:   "outage-ack-and-drop",
		Breaks: "the processor acks and drops a batch whose commit failed during a database outage",
		File:   "process/processor.go",
		Edits: []Edit{
			{Old: "\t\tif store.Transient(err) {\n", New: "\t\tif store.Transient(err) {\n\t\t\tp.ack(ctx, batch) // MUTATION: drop the batch\n\t\t\treturn\n\t\t}\n\t\tif false {\n"},
		},
		Caught: []Check{
			{Package: "./process/", Run: "^TestProcessorWaitsOutADatabaseOutage$"},
			{Package: "./test/chaos/", Run: "^TestPostgresRestarted$"},
		},
	},
	{
		Name:   "permanent-failure-dropped",
		Breaks: "the processor acks (drops) a result that can never be stored instead of returning it until it is dead-lettered",
		File:   "process/processor.go",
		Edits: []Edit{
			{Old: "\t\t\t_ = batch[0].d.Requeue()\n", New: "\t\t\t_ = batch[0].d.Ack(false) // MUTATION: drop it\n"},
		},
		Caught: []Check{
			{Package: "./process/", Run: "^TestProcessorDeadLettersAPermanentFailure$"},
		},
	},
	{
		Name:   "crawler-ack-without-confirm",
		Breaks: "the crawler acks a job without waiting for the broker to confirm its result",
		File:   "crawl/worker.go",
		Edits: []Edit{
			{Old: "\tif err := c.wait(ctx); err != nil {\n", New: "\tif err := error(nil); err != nil { // MUTATION: no confirm wait\n"},
		},
		Caught: []Check{
			{Package: "./crawl/", Run: "^TestWorkerRequeuesUnconfirmedResult$"},
			{Package: "./test/chaos/", Run: "^TestBrokerRefusesResults$"},
		},
	},
	{
		Name:   "ssrf-guard-off",
		Breaks: "the crawler's SSRF guard lets every private address through, whatever TRAWL_ALLOW_PRIVATE_NETWORKS says",
		File:   "cmd/crawler/run.go",
		Edits: []Edit{
			{Old: "Guard: crawl.Guard{AllowPrivate: cfg.AllowPrivate,", New: "Guard: crawl.Guard{AllowPrivate: true, // MUTATION: guard off\n\t\t\t"},
		},
		Caught: []Check{
			{Package: "./test/e2e/", Run: "^TestSSRFGuardAllowsOnlyTheSite$"},
		},
	},
	{
		Name:   "canonical-drops-query",
		Breaks: "canonicalisation drops the query string, merging pages that differ only by query",
		File:   "crawlurl/canonical.go",
		Edits: []Edit{
			{Old: "\tif p.hasQuery {\n\t\tif q := c.canonQuery(p.query); q != \"\" {\n", New: "\tif p.hasQuery && false { // MUTATION: drop the query\n\t\tif q := c.canonQuery(p.query); q != \"\" {\n"},
		},
		Caught: []Check{
			{Package: "./crawlurl/", Run: "^TestCanonicalize$"},
			{Package: "./test/e2e/", Run: "^TestCrawlSiteEndToEnd$"},
		},
	},
	{
		Name:   "dispatch-keeps-next-fetch",
		Breaks: "dispatch no longer moves a paced host's next_fetch_at past the slots it hands out",
		File:   "store/frontier.go",
		Edits: []Edit{
			{Old: "UPDATE hosts SET next_fetch_at = greatest(next_fetch_at, now() + v.ms * interval '1 millisecond')", New: "UPDATE hosts SET next_fetch_at = next_fetch_at"},
		},
		Caught: []Check{
			{Package: "./store/", Run: "^(TestDispatchGivesAPacedHostItsSlots|TestLostSlotsStillHoldTheHost)$"},
		},
	},
	{
		Name:   "apply-keeps-next-fetch",
		Breaks: "applying a result no longer moves a paced host's next_fetch_at to the fetch start plus the interval",
		File:   "store/apply.go",
		Edits: []Edit{
			{Old: "THEN greatest(next_fetch_at, now() + (greatest(min_interval_ms, crawl_delay_ms) - v.d) * interval '1 millisecond')", New: "THEN next_fetch_at"},
		},
		Caught: []Check{
			{Package: "./store/", Run: "^TestApplyPacesByTheDatabaseClock$"},
			{Package: "./test/e2e/", Run: "^TestSlowPagesNeverOverlap$"},
		},
	},
	{
		Name:   "paced-host-unlimited-inflight",
		Breaks: "a paced host may have more than one dispatch in flight",
		File:   "store/frontier.go",
		Edits: []Edit{
			{Old: "AND f.n < CASE WHEN greatest(h.min_interval_ms, h.crawl_delay_ms) > 0 THEN 1 ELSE $2 END", New: "AND f.n < $2"},
		},
		Caught: []Check{
			{Package: "./store/", Run: "^TestDispatchGivesAPacedHostItsSlots$"},
			{Package: "./test/e2e/", Run: "^TestSlowPagesNeverOverlap$"},
		},
	},
}
