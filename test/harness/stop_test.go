package harness

import (
	"os/exec"
	"syscall"
	"testing"
)

// TestDiedOfSIGTERM tells a process that SIGTERM's default action ended from one that exited
// on its own or of another signal.
func TestDiedOfSIGTERM(t *testing.T) {
	run := func(sig syscall.Signal, args ...string) bool {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if sig != 0 {
			_ = cmd.Process.Signal(sig)
		}
		_ = cmd.Wait()
		return diedOfSIGTERM(cmd.ProcessState)
	}
	if !run(syscall.SIGTERM, "sleep", "30") {
		t.Error("sleep ended by SIGTERM: diedOfSIGTERM = false, want true")
	}
	if run(syscall.SIGKILL, "sleep", "30") {
		t.Error("sleep ended by SIGKILL: diedOfSIGTERM = true, want false")
	}
	if run(0, "true") || run(0, "false") {
		t.Error("a process that exited on its own: diedOfSIGTERM = true, want false")
	}
}
