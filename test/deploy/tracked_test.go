package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// maxTrackedBytes is the largest file the repository may track, images under docs/ excepted.
const maxTrackedBytes = 1 << 20

// docImageExts are the extensions of the images under docs/ that may exceed maxTrackedBytes.
var docImageExts = []string{".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}

// trackedFile is one entry of the git index.
type trackedFile struct {
	Path string
	Mode string // 100644, 100755, 120000 (symlink), 160000 (submodule)
	Size int64
}

// trackedFiles lists the files git tracks in the repository holding this package, with their
// modes and sizes. It skips the test when git or the repository is missing, except under CI.
func trackedFiles(t *testing.T) []trackedFile {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set CI=true to fail instead)", args...)
	}
	if _, err := exec.LookPath("git"); err != nil {
		skip("git is not installed: %v", err)
	}
	// -s: mode, object, stage and path; -z: paths verbatim, NUL-terminated.
	out, err := exec.CommandContext(t.Context(), "git", "-C", "../..", "ls-files", "-s", "-z").Output()
	if err != nil {
		skip("git ls-files: %v", err)
	}
	var files []trackedFile
	for rec := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		meta, p, ok := strings.Cut(rec, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 3 {
			t.Fatalf("git ls-files: cannot read %q", rec)
		}
		files = append(files, trackedFile{Path: p, Mode: fields[0]})
	}
	if len(files) < 50 {
		t.Fatalf("git ls-files listed only %d files: the listing is broken", len(files))
	}
	// Sizes come from the index's blobs, so a file deleted or changed in the work tree is
	// judged as it would be committed.
	var objects bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&objects, ":%s\n", f.Path)
	}
	cmd := exec.CommandContext(t.Context(), "git", "-C", "../..", "cat-file", "--batch-check=%(objectsize)")
	cmd.Stdin = &objects
	sizes, err := cmd.Output()
	if err != nil {
		t.Fatalf("git cat-file: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(sizes))
	for i := range files {
		if !sc.Scan() {
			t.Fatalf("git cat-file: no size for %s", files[i].Path)
		}
		if files[i].Mode == "160000" {
			continue // a submodule's commit: "missing"
		}
		n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			t.Fatalf("git cat-file: size of %s: %q", files[i].Path, sc.Text())
		}
		files[i].Size = n
	}
	return files
}

// executableFormat names the executable format of the file's content (ELF, Mach-O or PE), or
// returns "" when it is none of them.
func executableFormat(r io.ReaderAt) string {
	if f, err := elf.NewFile(r); err == nil {
		_ = f.Close()
		return "ELF"
	}
	if f, err := macho.NewFile(r); err == nil {
		_ = f.Close()
		return "Mach-O"
	}
	if f, err := macho.NewFatFile(r); err == nil {
		_ = f.Close()
		return "Mach-O universal"
	}
	if f, err := pe.NewFile(r); err == nil {
		_ = f.Close()
		return "PE"
	}
	return ""
}

// trackedFileProblem says why the repository must not track a file with this mode, size and
// content (read through open), or returns "" when it may.
func trackedFileProblem(f trackedFile, content io.ReaderAt) string {
	if f.Mode == "120000" || f.Mode == "160000" {
		return "" // symlinks and submodules carry no content of their own
	}
	if content != nil {
		if format := executableFormat(content); format != "" {
			return "is an executable binary (" + format + "): build output goes in bin/, which is ignored"
		}
	}
	if f.Mode == "100755" {
		head := make([]byte, 2)
		if content == nil {
			return "is executable but could not be read"
		}
		if n, _ := content.ReadAt(head, 0); n < 2 || string(head) != "#!" {
			return "has the executable bit but is not a script starting with #!"
		}
	}
	docImage := strings.HasPrefix(f.Path, "docs/") && slices.Contains(docImageExts, strings.ToLower(path.Ext(f.Path)))
	if f.Size > maxTrackedBytes && !docImage {
		return fmt.Sprintf("is %d bytes, over the %d-byte limit for tracked files (images under docs/ excepted)", f.Size, maxTrackedBytes)
	}
	return ""
}

// TestNoBinariesTracked keeps build output and other large files out of the repository: no
// tracked file may be an executable binary, carry the executable bit without being a #! script,
// or exceed 1 MiB (images under docs/ excepted).
func TestNoBinariesTracked(t *testing.T) {
	t.Parallel()
	var problems []string
	for _, f := range trackedFiles(t) {
		var content io.ReaderAt
		if fh, err := os.Open(filepath.Join("..", "..", filepath.FromSlash(f.Path))); err == nil {
			defer fh.Close()
			content = fh
		}
		if p := trackedFileProblem(f, content); p != "" {
			problems = append(problems, f.Path+" "+p)
		}
	}
	if diff := cmp.Diff([]string(nil), problems); diff != "" {
		t.Errorf("tracked files that should not be (-want +got):\n%s", diff)
	}
}

// TestTrackedFileProblem checks the rules of TestNoBinariesTracked on made-up files, including
// the test binary itself, which is a real executable of this platform.
func TestTrackedFileProblem(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	fi, err := exe.Stat()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReader("package main\n")
	script := strings.NewReader("#!/bin/sh\necho hi\n")
	tests := []struct {
		name    string
		file    trackedFile
		content io.ReaderAt
		want    string // a word of the problem, or "" for none
	}{
		{"source file", trackedFile{"cmd/x/main.go", "100644", 13}, text, ""},
		{"script", trackedFile{"scripts/run", "100755", 18}, script, ""},
		{"binary", trackedFile{"processor", "100755", fi.Size()}, exe, "executable binary"},
		{"binary without the executable bit", trackedFile{"tool.bin", "100644", fi.Size()}, exe, "executable binary"},
		{"executable text", trackedFile{"notes.txt", "100755", 13}, text, "executable bit"},
		{"large file", trackedFile{"data/dump.sql", "100644", maxTrackedBytes + 1}, text, "over the"},
		{"file of exactly the limit", trackedFile{"data/dump.sql", "100644", maxTrackedBytes}, text, ""},
		{"large image under docs", trackedFile{"docs/screenshot.PNG", "100644", 5 << 20}, text, ""},
		{"large image elsewhere", trackedFile{"web/static/big.png", "100644", 5 << 20}, text, "over the"},
		{"symlink", trackedFile{"link", "120000", 10}, nil, ""},
	}
	for _, tt := range tests {
		got := trackedFileProblem(tt.file, tt.content)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s: problem %q, want one containing %q", tt.name, got, tt.want)
		}
	}
}

// TestBuiltBinariesIgnored checks that git ignores the binaries `make build` and a bare
// `go build` write, so they cannot be committed by accident again.
func TestBuiltBinariesIgnored(t *testing.T) {
	t.Parallel()
	trackedFiles(t) // skips without git
	paths := []string{
		"bin/crawler", "bin/processor", "bin/dashboard",
		"crawler", "processor", "dashboard",
		"cmd/crawler/crawler", "cmd/processor/processor", "cmd/dashboard/dashboard",
		"deploy/deploy.test",
	}
	// --no-index: judge the patterns alone, whether or not a path is tracked today.
	cmd := exec.CommandContext(t.Context(), "git", "-C", "../..", "check-ignore", "--no-index", "--stdin", "-z")
	cmd.Stdin = strings.NewReader(strings.Join(paths, "\x00") + "\x00")
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("git check-ignore: %v", err)
	}
	ignored := map[string]bool{}
	for p := range strings.SplitSeq(string(out), "\x00") {
		ignored[p] = true
	}
	var notIgnored []string
	for _, p := range paths {
		if !ignored[p] {
			notIgnored = append(notIgnored, p)
		}
	}
	if diff := cmp.Diff([]string(nil), notIgnored); diff != "" {
		t.Errorf("build output .gitignore does not ignore (-want +got):\n%s", diff)
	}
	// Source directories of the same names stay visible.
	cmd = exec.CommandContext(t.Context(), "git", "-C", "../..", "check-ignore", "--no-index", "-q", "cmd/crawler/main.go")
	if err := cmd.Run(); err == nil {
		t.Error(".gitignore ignores cmd/crawler/main.go")
	}
}
