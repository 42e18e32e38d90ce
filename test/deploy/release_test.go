package deploy

import (
	"cmp"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestLicense checks that the repository carries the Apache License 2.0 and the README says so.
func TestLicense(t *testing.T) {
	t.Parallel()
	license := readFile(t, "../../LICENSE")
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"} {
		if !strings.Contains(license, want) {
			t.Errorf("LICENSE lacks %q: not the Apache License 2.0", want)
		}
	}
	if !strings.Contains(readFile(t, "../../README.md"), "Apache License 2.0") {
		t.Error("README.md does not name the license")
	}
}

// TestChangelog checks CHANGELOG.md's shape (Keep a Changelog): an Unreleased section first,
// then released versions newest first, each a semantic version with an ISO date, each with a
// link reference at the end.
func TestChangelog(t *testing.T) {
	t.Parallel()
	text := readFile(t, "../../CHANGELOG.md")
	if !strings.HasPrefix(text, "# Changelog\n") || !strings.Contains(text, "keepachangelog.com") {
		t.Error("CHANGELOG.md does not start with # Changelog and cite Keep a Changelog")
	}
	headRE := regexp.MustCompile(`(?m)^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$`)
	var versions []string
	for i, m := range headRE.FindAllStringSubmatch(text, -1) {
		switch {
		case i == 0 && m[1] != "Unreleased":
			t.Errorf("first section is %q, want Unreleased", m[1])
		case i == 0:
		case parseVersion(m[1]) == nil || m[2] == "":
			t.Errorf("section %q: want a semantic version and a date (## [1.2.3] - 2026-01-31)", m[0])
		default:
			versions = append(versions, m[1])
		}
		if !strings.Contains(text, "\n["+m[1]+"]: https://") {
			t.Errorf("no link reference for [%s]", m[1])
		}
	}
	if len(versions) == 0 || versions[len(versions)-1] != "0.1.0" {
		t.Errorf("released versions %v: want them to go back to 0.1.0", versions)
	}
	for i := 1; i < len(versions); i++ {
		if compareVersions(parseVersion(versions[i-1]), parseVersion(versions[i])) <= 0 {
			t.Errorf("versions not newest first: %s before %s", versions[i-1], versions[i])
		}
	}
}

// TestDocsNameTheirVersion keeps release-specific notes in CHANGELOG.md: the documents must not
// say "this release" or "the previous release", which mean nothing once the next one is out.
func TestDocsNameTheirVersion(t *testing.T) {
	t.Parallel()
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, "../../README.md")
	phrase := regexp.MustCompile(`(?i)\b(this|the previous|the last|the next) release\b`)
	var found []string
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := phrase.FindString(line); m != "" {
				found = append(found, filepath.Base(d)+":"+strconv.Itoa(i+1)+": "+m)
			}
		}
	}
	if diff := gocmp.Diff([]string(nil), found); diff != "" {
		t.Errorf("release-relative wording outside CHANGELOG.md; move the note there under its version (-want +got):\n%s", diff)
	}
}

// parseVersion reads a release version, MAJOR.MINOR.PATCH with an optional -prerelease, and
// returns its three numbers, or nil.
func parseVersion(v string) []int {
	m := regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`).FindStringSubmatch(v)
	if m == nil {
		return nil
	}
	out := make([]int, 3)
	for i := range out {
		out[i], _ = strconv.Atoi(m[i+1])
	}
	return out
}

func compareVersions(a, b []int) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
