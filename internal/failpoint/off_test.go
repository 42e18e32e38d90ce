//go:build !failpoint

package failpoint

import (
	"os"
	"os/exec"
	"testing"
)

// TestOffBuildNeverExits: without the build tag an armed point is ignored.
func TestOffBuildNeverExits(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Inject(ProcessorAfterCommit)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOffBuildNeverExits$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", Env+"="+ProcessorAfterCommit)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child exited with %v: %s", err, out)
	}
	if Enabled {
		t.Fatal("Enabled is true without the failpoint tag")
	}
}
