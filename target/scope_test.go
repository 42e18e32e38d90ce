package target_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/trawlhq/trawl/target"
)

func TestScopeAllows(t *testing.T) {
	t.Parallel()
	spec := target.Spec{SeedURL: "http://example.com/", Scope: "domain", Include: `^https?://(sub\.)?example\.com/`, Exclude: `/[be]$`}
	sc, err := spec.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"http://example.com/a":      true,
		"http://sub.example.com/d":  true,
		"http://example.com/b":      false, // excluded
		"http://other.example.com/": false, // not included
		"http://other.com/a":        false, // out of scope
	} {
		if got := sc.Allows(u); got != want {
			t.Errorf("Allows(%q) = %t, want %t", u, got, want)
		}
	}
	if _, err := (target.Spec{SeedURL: "http://example.com/", Include: "("}).Compile(); !isField(err, "include") {
		t.Fatalf("Compile(bad include) = %v, want an error on include", err)
	}
}

func isField(err error, field string) bool {
	var fe *target.FieldError
	return errors.As(err, &fe) && fe.Field == field
}

// The cache compiles a target's scope once per spec: the same target and spec get the same
// compiled scope back, a changed spec gets a new one, a bad one its error without compiling
// again, and the cache never holds more than its size.
func TestScopeCache(t *testing.T) {
	t.Parallel()
	c := target.NewScopeCache(3)
	spec := target.Spec{SeedURL: "http://example.com/", Scope: "host"}
	first, err := c.Scope(1, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.Scope(1, spec)
	if again != first {
		t.Fatal("the same target and spec compiled twice")
	}
	spec.MaxDepth, spec.Name = 9, "renamed" // not part of the scope
	if again, _ := c.Scope(1, spec); again != first {
		t.Fatal("a change outside the scope's fields compiled it again")
	}
	spec.Exclude = `\.pdf$`
	changed, err := c.Scope(1, spec)
	if err != nil || changed == first {
		t.Fatalf("a changed spec got the old compiled scope (%v)", err)
	}
	if changed.Allows("http://example.com/x.pdf") || !first.Allows("http://example.com/x.pdf") {
		t.Fatal("the compiled scopes do not follow their specs")
	}
	if other, _ := c.Scope(2, spec); other == changed {
		t.Fatal("two targets share an entry")
	}
	bad := target.Spec{SeedURL: "http://example.com/", Include: "("}
	if _, err := c.Scope(3, bad); !isField(err, "include") {
		t.Fatalf("Scope(bad) = %v, want an error on include", err)
	}
	if _, err := c.Scope(3, bad); !isField(err, "include") {
		t.Fatalf("Scope(bad) again = %v, want an error on include", err)
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3 (the size)", n)
	}

	// Concurrent use, beyond the size.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				s := target.Spec{SeedURL: fmt.Sprintf("http://h%d.example/", j%5), Scope: "host"}
				sc, err := c.Scope(int64(j%5), s)
				if err != nil || !sc.Allows(s.SeedURL+"x") {
					t.Errorf("goroutine %d: Scope = %v, %v", i, sc, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 3 {
		t.Fatalf("Len = %d after concurrent use, want at most 3", n)
	}
}
