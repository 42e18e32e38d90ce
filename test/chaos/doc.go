// Package chaos holds the reliability suite: it runs the real binaries (built with the
// failpoint tag) against private and shared services, injects faults — kill -9, failpoints,
// a stopped broker, a silent network partition, lost messages, a restarted database, a memory
// alarm (also during SIGTERM), poison messages, SIGTERM, re-crawl requests sent twice — and checks
// that every in-scope page of a synthetic site is stored exactly once.
//
// `make test` runs a bounded version; `make chaos` (TRAWL_CHAOS=full) runs larger crawls.
// Each scenario logs one parseable line:
//
//	CHAOS scenario=<name> pages_expected=N pages_stored=N duplicates=N refetches=N max_refetches=N lease_expiries=N max_lease_expiries=N|any faults=N recover_ms=N max_recover_ms=N total_ms=N race=B
//
// refetches counts fetches beyond one per page (at-least-once delivery at work); duplicates
// counts pages stored more than once and must be 0. lease_expiries counts URLs the lease
// reapers brought back. recover_ms is the longest time from the end of a fault until pages were
// stored again.
//
// The end state alone cannot tell recovery through redelivery from recovery through the lease,
// which also stores every page once, minutes later. So each scenario also bounds refetches,
// lease expiries and recover_ms (the max_ figures; bounds, in run_test.go), from runs of correct code with a wide
// margin (docs/adr/0008-chaos-scenarios-bound-how-they-recover.md). `make mutate` checks that
// the scenarios fail when the promises they guard are broken.
package chaos
