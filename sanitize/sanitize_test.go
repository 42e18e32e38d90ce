package sanitize

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "ascii", in: "hello, world", want: "hello, world"},
		{name: "keeps tab newline cr", in: "a\tb\nc\r\nd", want: "a\tb\nc\r\nd"},
		{name: "unicode", in: "bücher 日本語 🙂", want: "bücher 日本語 🙂"},
		{name: "nul", in: "a\x00b", want: "ab"},
		{name: "only nul", in: "\x00\x00", want: ""},
		{name: "c0 controls", in: "\x01a\x07b\x0bc\x0cd\x1b[31me\x1f", want: "abcd[31me"},
		{name: "del kept", in: "a\x7fb", want: "a\x7fb"},
		{name: "invalid byte", in: "a\xffb", want: "a\uFFFDb"},
		{name: "invalid run is one replacement", in: "a\xff\xfe\xfdb", want: "a\uFFFDb"},
		{name: "truncated rune", in: "ab\xe2\x82", want: "ab\uFFFD"},
		{name: "surrogate", in: "\xed\xa0\x80", want: "\uFFFD"},
		{name: "overlong nul", in: "\xc0\x80", want: "\uFFFD"},
		{name: "invalid runs split by control", in: "\xff\x00\xff", want: "\uFFFD\uFFFD"},
		{name: "replacement char kept", in: "\uFFFD", want: "\uFFFD"},
		{name: "mixed", in: "\x00é\xff\x01z", want: "é\uFFFDz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Text(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Text(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if again := Text(got); again != got {
				t.Errorf("Text not idempotent: Text(%q) = %q", got, again)
			}
		})
	}
}

func TestTextMatchesToValidUTF8(t *testing.T) {
	t.Parallel()
	// Without control characters, Text is exactly strings.ToValidUTF8.
	for _, s := range []string{"a\xffb", "\xff\xfe", "x\xe2\x82y\xe2\x82", "\xed\xa0\x80\xed\xbf\xbf", "ok"} {
		want := strings.ToValidUTF8(s, "\uFFFD")
		if diff := cmp.Diff(want, Text(s)); diff != "" {
			t.Errorf("Text(%q) mismatch (-want +got):\n%s", s, diff)
		}
	}
}

func TestTextCleanDoesNotAllocate(t *testing.T) {
	s := strings.Repeat("clean text, ünïcödé\tand\nlines ", 100)
	allocs := testing.AllocsPerRun(100, func() {
		if Text(s) != s {
			t.Fatal("clean text changed")
		}
	})
	if allocs != 0 {
		t.Errorf("Text on clean input allocated %v times, want 0", allocs)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		max     int
		want    string
		wantCut bool
	}{
		{name: "short", in: "abc", max: 10, want: "abc"},
		{name: "exact", in: "abc", max: 3, want: "abc"},
		{name: "cut ascii", in: "abcdef", max: 4, want: "abcd", wantCut: true},
		{name: "zero", in: "abc", max: 0, want: "", wantCut: true},
		{name: "negative", in: "abc", max: -1, want: "", wantCut: true},
		{name: "empty zero", in: "", max: 0, want: ""},
		{name: "empty negative", in: "", max: -5, want: ""},
		{name: "before two byte rune", in: "aé", max: 2, want: "a", wantCut: true},
		{name: "after two byte rune", in: "aéb", max: 3, want: "aé", wantCut: true},
		{name: "inside three byte rune", in: "a€b", max: 3, want: "a", wantCut: true},
		{name: "inside four byte rune", in: "a🙂b", max: 4, want: "a", wantCut: true},
		{name: "rune at start", in: "🙂", max: 2, want: "", wantCut: true},
		{name: "invalid continuation bytes", in: "\x80\x80\x80\x80\x80\x80", max: 5, want: "\x80\x80\x80\x80\x80", wantCut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, cut := Truncate(tt.in, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Truncate(%q, %d) mismatch (-want +got):\n%s", tt.in, tt.max, diff)
			}
			if cut != tt.wantCut {
				t.Errorf("Truncate(%q, %d) cut = %v, want %v", tt.in, tt.max, cut, tt.wantCut)
			}
		})
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x00b", "\xff\xfe", "é\x01\xc3", "\xed\xa0\x80", "tab\tnl\ncr\r", "🙂\x1f"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Text(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Text(%q) = %q, not valid UTF-8", s, got)
		}
		for i := 0; i < len(got); i++ {
			if dropped(got[i]) {
				t.Fatalf("Text(%q) = %q, contains control byte %#x", s, got, got[i])
			}
		}
		if again := Text(got); again != got {
			t.Fatalf("Text not idempotent: Text(%q) = %q, Text of that = %q", s, got, again)
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }) && got != s {
			t.Fatalf("Text changed clean input %q to %q", s, got)
		}

		cut, truncated := Truncate(got, n)
		if !strings.HasPrefix(got, cut) {
			t.Fatalf("Truncate(%q, %d) = %q, not a prefix", got, n, cut)
		}
		if len(cut) > max(n, 0) {
			t.Fatalf("Truncate(%q, %d) = %q, longer than %d", got, n, cut, n)
		}
		if truncated != (len(cut) < len(got)) {
			t.Fatalf("Truncate(%q, %d) reported cut=%v for %q", got, n, truncated, cut)
		}
		if !utf8.ValidString(cut) {
			t.Fatalf("Truncate(%q, %d) = %q, not valid UTF-8", got, n, cut)
		}
		if truncated && len(cut) < n-(utf8.UTFMax-1) {
			t.Fatalf("Truncate(%q, %d) = %q, cut too much", got, n, cut)
		}
	})
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"text/html", 255, "text/html"},
		{"a\x00b\xffc", 255, "ab\uFFFDc"},
		{"héllo", 2, "h"}, // not half of é
		{"abc", 0, ""},
	} {
		if got := Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
