package main

import (
	"testing"

	"github.com/trawlhq/trawl/test/clitest"
)

// TestCommandLine: version and help answer without starting the crawler, and an unknown argument
// is a usage error.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	clitest.Check(t, cli, run)
}
