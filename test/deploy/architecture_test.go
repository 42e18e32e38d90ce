package deploy

import (
	"flag"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

const modulePath = "github.com/trawlhq/trawl"

var updateGraph = flag.Bool("update-graph", false, "rewrite docs/ARCHITECTURE.md's package graph from the code")

// TestArchitectureShowsThePackageGraph checks that docs/ARCHITECTURE.md's package graph has an
// arrow for every import between two of the module's production packages, and no other: the
// graph is the code's. Regenerate it with
// `go test ./test/deploy/ -run TestArchitectureShowsThePackageGraph -update-graph`.
func TestArchitectureShowsThePackageGraph(t *testing.T) {
	const (
		doc   = "../../docs/ARCHITECTURE.md"
		begin = "```mermaid\nflowchart LR\n"
		end   = "```\n"
	)
	text := readFile(t, doc)
	i := strings.Index(text, begin)
	j := -1
	if i >= 0 {
		j = strings.Index(text[i+len(begin):], end)
	}
	if i < 0 || j < 0 {
		t.Fatalf("%s has no package graph (a ```mermaid block starting with flowchart LR)", doc)
	}
	start, stop := i+len(begin), i+len(begin)+j
	want := graphLines(t, "../..")
	if *updateGraph {
		if err := os.WriteFile(doc, []byte(text[:start]+strings.Join(want, "")+text[stop:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := strings.SplitAfter(text[start:stop], "\n")
	got = slices.DeleteFunc(got, func(s string) bool { return strings.TrimSpace(s) == "" })
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("%s's package graph is not the code's; rerun with -update-graph (-want +got):\n%s", doc, diff)
	}
}

// graphLines returns the mermaid edges "a --> b" for every import from one production package
// of the module under root to another, sorted. Production packages are those outside test/,
// testdata and hidden folders, counting their non-test files only.
func graphLines(t *testing.T, root string) []string {
	t.Helper()
	edges := map[[2]string]bool{}
	pkgs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || rel == "test" || rel == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		from := path.Dir(rel)
		pkgs[from] = true
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			if to, ok := strings.CutPrefix(ip, modulePath+"/"); ok && to != from {
				edges[[2]string{from, to}] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 || len(edges) < 10 {
		t.Fatalf("found %d packages and %d imports: the scan is broken", len(pkgs), len(edges))
	}
	node := func(p string) string {
		id := strings.NewReplacer("/", "_", "-", "_").Replace(p)
		if id == p {
			return p
		}
		return id + "[" + p + "]"
	}
	var lines []string
	for e := range edges {
		lines = append(lines, "  "+node(e[0])+" --> "+node(e[1])+"\n")
	}
	slices.Sort(lines)
	return lines
}

// TestEveryDecisionRecordIsIndexed checks that docs/adr/README.md links every decision record,
// that every link there names a record that exists, and that no two records share a number.
func TestEveryDecisionRecordIsIndexed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../docs/adr/[0-9][0-9][0-9][0-9]-*.md")
	if err != nil || len(files) < 10 {
		t.Fatalf("found %d decision records (%v): the scan is broken", len(files), err)
	}
	index := readFile(t, "../../docs/adr/README.md")
	numbers := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if other, ok := numbers[name[:4]]; ok {
			t.Errorf("%s and %s share the number %s", other, name, name[:4])
		}
		numbers[name[:4]] = name
		if !strings.Contains(index, "]("+name+")") {
			t.Errorf("docs/adr/README.md does not list %s", name)
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)]+\.md)\)`).FindAllStringSubmatch(index, -1) {
		if _, err := os.Stat(filepath.Join("../../docs/adr", m[1])); err != nil {
			t.Errorf("docs/adr/README.md links %s, which does not exist", m[1])
		}
	}
}
