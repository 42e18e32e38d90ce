package deploy

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMakeBuildStampsVersion builds the binaries with `make build` and runs them: `version` and
// `--version` print the version git describe gives, which the Makefile stamped with -ldflags,
// and an unknown argument exits 2 with the usage on stderr.
func TestMakeBuildStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the three binaries")
	}
	t.Parallel()
	trackedFiles(t) // skips without git
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make is not installed")
		}
		t.Skip("make is not installed")
	}
	describe, err := exec.CommandContext(t.Context(), "git", "-C", "../..", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		t.Fatalf("git describe: %v", err)
	}
	want := strings.TrimSpace(string(describe))
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "make", "-s", "-C", "../..", "build", "BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, name := range []string{"crawler", "processor", "dashboard"} {
		for _, arg := range []string{"version", "--version"} {
			// No environment: the answer needs no configuration and no services.
			cmd := exec.CommandContext(t.Context(), filepath.Join(bin, name), arg)
			cmd.Env = []string{}
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("%s %s: %v", name, arg, err)
				continue
			}
			wantLine := "trawl " + name + " " + want + " (" + runtime.Version() + ")\n"
			if diff := cmp.Diff(wantLine, string(out)); diff != "" {
				t.Errorf("%s %s (-want +got):\n%s", name, arg, diff)
			}
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), filepath.Join(bin, name), "--no-such-flag")
		cmd.Env, cmd.Stdout, cmd.Stderr = []string{}, &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || stdout.Len() != 0 ||
			!strings.Contains(stderr.String(), "Usage: "+name+" [command]") {
			t.Errorf("%s --no-such-flag: %v, stdout %q, stderr %q; want exit status 2 and the usage on stderr",
				name, err, stdout.String(), stderr.String())
		}
	}
}
