//go:build mutate

package mutate

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pkgs restricts the checks to packages matching it: -mutate.pkgs 'process|crawl' leaves the
// slow chaos and end-to-end runs out.
var pkgs = flag.String("mutate.pkgs", "", "run only the checks whose package matches this regexp")

// TestMutations applies each mutation to a copy of the repository and checks that the tests it
// names fail. Select mutations with -run 'TestMutations/<name>'.
func TestMutations(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range Mutations {
		if seen[m.Name] || m.Name == "" || len(m.Edits) == 0 || len(m.Caught) == 0 {
			t.Fatalf("mutation %q: names must be unique and present, with edits and checks", m.Name)
		}
		seen[m.Name] = true
		t.Run(m.Name, func(t *testing.T) {
			dir := copyRepo(t, root)
			if err := apply(filepath.Join(dir, m.File), m.Edits); err != nil {
				t.Fatalf("%s: %v (the code has drifted: update the mutation)", m.File, err)
			}
			if out, err := goCmd(t.Context(), dir, nil, "vet", "./"+filepath.Dir(m.File)+"/"); err != nil {
				t.Fatalf("mutated %s does not build:\n%s", m.File, out)
			}
			only := regexp.MustCompile(*pkgs)
			for _, c := range m.Caught {
				if !only.MatchString(c.Package) {
					t.Logf("skipped: %s -run %s (-mutate.pkgs)", c.Package, c.Run)
					continue
				}
				start := time.Now()
				caught, out := run(t, dir, c)
				if !caught {
					t.Errorf("NOT CAUGHT: %s (%s) passed %s -run %s in %s:\n%s", m.Name, m.Breaks, c.Package, c.Run,
						time.Since(start).Round(time.Second), tail(out, 40))
					continue
				}
				t.Logf("caught: %s -run %s failed in %s:\n%s", c.Package, c.Run, time.Since(start).Round(time.Second), reasons(out))
			}
		})
	}
}

// failLine is a failed test's verdict in `go test -v` output.
var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// run runs one check on the mutated copy and reports whether a named test failed (a build or
// setup failure does not count).
func run(t *testing.T, dir string, c Check) (caught bool, out string) {
	t.Helper()
	args := []string{"test", "-count=1", "-v", "-timeout", "30m", "-run", c.Run}
	if c.Tags != "" {
		args = append(args, "-tags", c.Tags)
	}
	args = append(args, c.Package)
	out, err := goCmd(t.Context(), dir, c.Env, args...)
	if err == nil {
		return false, out
	}
	if strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]") {
		t.Fatalf("%s does not build with the mutation:\n%s", c.Package, tail(out, 40))
	}
	names := regexp.MustCompile(c.Run)
	for _, m := range failLine.FindAllStringSubmatch(out, -1) {
		if names.MatchString(strings.SplitN(m[1], "/", 2)[0]) {
			return true, out
		}
	}
	return false, out
}

// testLine is a test's own message in `go test -v` output ("    file_test.go:12: …"), as
// opposed to a worker's log line that the harness relays.
var testLine = regexp.MustCompile(`^\s+\w+_test\.go:\d+: `)

// reasons picks the failed tests' verdicts and their first messages out of out, to show why a
// mutation was caught.
func reasons(out string) string {
	var b strings.Builder
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=") || strings.Contains(l, "CHAOS scenario=") && !strings.Contains(l, "_test.go") {
			continue
		}
		if failLine.MatchString(l) || testLine.MatchString(l) && n < 8 {
			b.WriteString("\t" + strings.TrimSpace(l) + "\n")
			if !failLine.MatchString(l) {
				n++
			}
		}
	}
	return b.String()
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// apply makes each edit in the file, each Old text having to occur exactly once.
func apply(path string, edits []Edit) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	for _, e := range edits {
		if n := strings.Count(s, e.Old); n != 1 {
			return fmt.Errorf("edit text found %d times, want once: %q", n, e.Old)
		}
		s = strings.Replace(s, e.Old, e.New, 1)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// repoRoot is the top of the git work tree holding this package.
func repoRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("mutate: find the repository: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyRepo copies the files git tracks or would track (as they are in the work tree) to a temporary directory.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, f)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink or submodule
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
