package crawlurl

import (
	"errors"
	"testing"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	f, err := CompileFilter(`^https?://example\.com/docs/`, `\.pdf$|/private/`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		u    string
		want bool
	}{
		{"http://example.com/docs/a.html", true},
		{"https://example.com/docs/", true},
		{"http://example.com/blog/a.html", false},             // not included
		{"http://example.com/docs/manual.pdf", false},         // excluded
		{"http://example.com/docs/private/x", false},          // excluded
		{"http://evil.test/?http://example.com/docs/", false}, // include is anchored
	}
	for _, tc := range tests {
		if got := f.Allows(tc.u); got != tc.want {
			t.Errorf("Allows(%q) = %t, want %t", tc.u, got, tc.want)
		}
	}
	if !(Filter{}).Allows("http://anything/") {
		t.Error("zero Filter refused a URL")
	}
	if only, _ := CompileFilter("", "/tmp/"); !only.Allows("http://a/b") || only.Allows("http://a/tmp/x") {
		t.Error("exclude-only filter wrong")
	}
}

func TestCompileFilterErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ include, exclude, which string }{
		{"(", "", "include"},
		{"", "[a-", "exclude"},
		{"a{2000}", "", "include"}, // RE2 repeat limit
		{string(make([]byte, MaxPatternLength+1)), "", "include"},
	} {
		_, err := CompileFilter(tc.include, tc.exclude)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Which != tc.which {
			t.Errorf("CompileFilter(%.20q, %.20q) = %v, want a %s PatternError", tc.include, tc.exclude, err, tc.which)
		}
	}
}
