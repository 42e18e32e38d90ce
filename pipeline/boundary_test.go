package pipeline_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// amqpAllowed are the directories, relative to the module root, whose non-test files may import
// the AMQP client: pipeline itself, and the test-support packages that drive the broker directly
// (chaos cuts connections, testenv creates and deletes per-test vhost prefixes).
var amqpAllowed = []string{"pipeline", "test/private", "test/testenv"}

// TestOnlyPipelineImportsAMQP keeps the broker behind pipeline: a non-test file anywhere else
// that imports amqp091 fails it. Test files may import it to build deliveries or inspect queues.
func TestOnlyPipelineImportsAMQP(t *testing.T) {
	t.Parallel()
	root := ".."
	var got []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			if slices.Contains(amqpAllowed, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if p == "github.com/rabbitmq/amqp091-go" {
				got = append(got, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string(nil), got); diff != "" {
		t.Errorf("non-test files outside %v import amqp091; only pipeline may speak AMQP (-want +got):\n%s", amqpAllowed, diff)
	}
}
