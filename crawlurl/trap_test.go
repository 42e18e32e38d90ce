package crawlurl

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestTrapRulesCheck(t *testing.T) {
	t.Parallel()
	long := "http://example.com/" + strings.Repeat("a", MaxURLLength-len("http://example.com/"))
	tests := []struct {
		name  string
		rules TrapRules
		url   string
		want  error
	}{
		{"plain", TrapRules{}, "http://example.com/a/b/c.html?x=1", nil},
		{"root", TrapRules{}, "http://example.com/", nil},
		{"no path", TrapRules{}, "http://example.com", nil},
		{"segment twice in a row", TrapRules{}, "http://example.com/a/a/", nil},
		{"segment three times in a row", TrapRules{}, "http://example.com/a/a/a/", ErrTrap},
		{"segment three times, no slash", TrapRules{}, "http://example.com/x/a/a/a", ErrTrap},
		{"pair twice", TrapRules{}, "http://example.com/a/b/a/b/", nil},
		{"pair three times", TrapRules{}, "http://example.com/x/a/b/a/b/a/b/y", ErrTrap},
		{"triple three times", TrapRules{}, "http://example.com/p/q/r/p/q/r/p/q/r/", ErrTrap},
		{"dates are fine", TrapRules{}, "http://example.com/2026/11/11/post", nil},
		{"empty segments", TrapRules{}, "http://example.com/a////b", ErrTrap},
		{"double slash is fine", TrapRules{}, "http://example.com/a//b", nil},
		{"segment everywhere", TrapRules{}, "http://example.com/x/1/x/2/x/3/x/4/x/5", ErrTrap},
		{"segment four times", TrapRules{}, "http://example.com/x/1/x/2/x/3/x/4", nil},
		{"too deep", TrapRules{}, "http://example.com" + deepPath(65), ErrTrap},
		{"deep but fine", TrapRules{}, "http://example.com" + deepPath(64), nil},
		{"many params", TrapRules{}, "http://example.com/?" + params(65), ErrTrap},
		{"params at the limit", TrapRules{}, "http://example.com/?" + params(64), nil},
		{"repeats in the query do not count", TrapRules{}, "http://example.com/a?p=/a/a/a/a", nil},
		{"at MaxURLLength", TrapRules{}, long, nil},
		{"over MaxURLLength", TrapRules{}, long + "b", ErrTooLong},
		{"shorter limit", TrapRules{MaxURLLength: 30}, "http://example.com/abcdefghijklmno", ErrTooLong},
		{"limit cannot exceed MaxURLLength", TrapRules{MaxURLLength: 10000}, long + "b", ErrTooLong},
		{"more repeats allowed", TrapRules{MaxRepeats: 3}, "http://example.com/a/a/a/", nil},
		{"repeats off", TrapRules{MaxRepeats: -1, MaxSegmentCount: -1}, "http://example.com/a/a/a/a/a/a/", nil},
		{"segment count off", TrapRules{MaxSegmentCount: -1}, "http://example.com/x/1/x/2/x/3/x/4/x/5", nil},
	}
	for _, tc := range tests {
		err := tc.rules.Check(tc.url)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Check(%q) = %v, want %v", tc.name, tc.url, err, tc.want)
		}
	}
}

func deepPath(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("/s")
		b.WriteByte(byte('a' + i%26))
		b.WriteByte(byte('a' + i/26))
	}
	return b.String()
}

func params(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = "k" + strconv.Itoa(i) + "=1"
	}
	return strings.Join(p, "&")
}

// TestTrapURLsFromRelativeLinks shows the classic trap: a page whose relative link adds a
// directory each time. Following it stops after a few levels.
func TestTrapURLsFromRelativeLinks(t *testing.T) {
	t.Parallel()
	u := "http://example.com/docs/"
	followed := 0
	for range 100 {
		base := mustParse(t, u)
		next, ok := Default.Resolve(base, "docs/")
		if !ok {
			t.Fatalf("Resolve failed at %q", u)
		}
		if (TrapRules{}).Check(next) != nil {
			break
		}
		u = next
		followed++
	}
	// /docs/docs/ is followed, /docs/docs/docs/ is not.
	if followed != 1 || u != "http://example.com/docs/docs/" {
		t.Errorf("followed %d levels of a self-nesting link (last %q), want 1", followed, u)
	}
}
