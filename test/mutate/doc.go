// Package mutate checks that the test suites guard the promises they were written for: each
// entry of Mutations breaks one promise on purpose (acking before the commit, dropping a batch
// during a database outage, …) with a textual edit, and names the tests that must then fail.
//
// The check is a Go test behind the build tag "mutate" (`make mutate`; not part of `make
// test`): for each mutation it copies the repository's tracked files to a temporary
// directory, applies the edits (failing loudly when an edit's text is not found exactly once,
// so that drift in the code is noticed rather than silently testing nothing), checks that the
// mutated copy builds, runs `go test -run` with the named tests on the named packages, and
// fails unless at least one of those tests failed. A build failure or a test that merely did
// not run does not count as caught.
package mutate
