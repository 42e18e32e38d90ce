package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestREADMEConfigTableListsEveryVariable keeps the README's configuration table in step with
// the code: every `env:"TRAWL_…"` tag in a non-test Go file must have a row of its own.
func TestREADMEConfigTableListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	rowRE := regexp.MustCompile("(?m)^\\| `(TRAWL_[A-Z0-9_]+)`")
	for _, m := range rowRE.FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
	}
	tagRE := regexp.MustCompile(`env:"(TRAWL_[A-Z0-9_]+)"`)
	used := map[string][]string{}
	err = filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range tagRE.FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = append(used[m[1]], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 10 {
		t.Fatalf("found only %d TRAWL_ variables in the code: the scan is broken", len(used))
	}
	var missing []string
	for name, files := range used {
		if !rows[name] {
			missing = append(missing, name+" (used in "+strings.Join(files, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("README.md's configuration table has no row for:\n  %s", strings.Join(missing, "\n  "))
	}
}
