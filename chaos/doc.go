// Package chaos holds the reliability suite: it runs the real binaries (built with the
// failpoint tag) against private and shared services, injects faults — kill -9, failpoints,
// a stopped broker, a restarted database, a memory alarm, poison messages, SIGTERM — and checks
// that every in-scope page of a synthetic site is stored exactly once.
//
// `make test` runs a bounded version; `make chaos` (TRAWL_CHAOS=full) runs larger crawls.
// Each scenario logs one parseable line:
//
//	CHAOS scenario=<name> pages_expected=N pages_stored=N duplicates=N refetches=N faults=N recover_ms=N total_ms=N
package chaos
