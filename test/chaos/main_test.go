package chaos

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/trawlhq/trawl/test/harness"
)

// full selects the larger crawls of `make chaos`.
var full = os.Getenv("TRAWL_CHAOS") == "full"

// sitePages is the size of the crawl in the crash scenarios.
func sitePages() int {
	if full {
		return 6000
	}
	return 2000
}

func TestMain(m *testing.M) {
	// Much of each scenario is waiting out an outage (a 30 s broker stop, a 35 s partition),
	// so run a few more at once than -parallel's GOMAXPROCS default, unless told otherwise.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "4")
	}
	cleanup, err := harness.BuildTags(raceEnabled, "failpoint")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
