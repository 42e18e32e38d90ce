package service

import (
	"os"
	"runtime"
	"testing"
)

func TestParseStatm(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"1000 250 100 10 0 300 0\n", 250 * 4096},
		{"1 0 0 0 0 0 0", 0},
		{"", 0},
		{"1000", 0},
		{"1000 x 1", 0},
		{"1000 -5 1", 0},
	} {
		if got := parseStatm([]byte(tt.in), 4096); got != tt.want {
			t.Errorf("parseStatm(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestRSSBytesFollowsTouchedMemory checks that RSSBytes is the resident size, not the virtual
// one: touching 64 MiB raises it by about that much.
func TestRSSBytesFollowsTouchedMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/statm"); err != nil {
		if runtime.GOOS == "linux" {
			t.Fatalf("no /proc/self/statm on Linux: %v", err)
		}
		if got := RSSBytes(); got != 0 {
			t.Errorf("RSSBytes without /proc = %d, want 0", got)
		}
		return
	}
	before := RSSBytes()
	if before < 1<<20 {
		t.Fatalf("RSSBytes = %d, want at least 1 MiB for a running Go test", before)
	}
	const n = 64 << 20
	buf := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		buf[i] = 1
	}
	after := RSSBytes()
	runtime.KeepAlive(buf)
	if grew := after - before; grew < n/2 {
		t.Errorf("RSS grew by %d bytes after touching %d, want about that much", grew, n)
	}
}
