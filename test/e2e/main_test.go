package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/trawlhq/trawl/test/harness"
)

func TestMain(m *testing.M) {
	cleanup, err := harness.Build(raceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// Aliases keep the tests short.
type (
	System       = harness.System
	TargetStatus = harness.TargetStatus
)

var NewSystem = harness.NewSystem
