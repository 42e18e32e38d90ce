package service

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

// TuneGC changes process-wide settings: this test is not parallel and restores them.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	gogc, limit := TuneGC([]string{"PATH=/bin"}, 300<<20)
	if gogc != "400" || limit > 300<<20 || limit <= 0 {
		t.Fatalf("defaults: GOGC %s, limit %d", gogc, limit)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Fatalf("GC percent in force = %d, want %d", got, DefaultGCPercent)
	}

	// Settings the operator made are left alone.
	debug.SetMemoryLimit(1 << 40)
	gogc, limit = TuneGC([]string{"GOGC=50", "GOMEMLIMIT=1TiB"}, 300<<20)
	if gogc != "50" || limit != 1<<40 {
		t.Fatalf("operator's settings: GOGC %s, limit %d", gogc, limit)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set by the operator was overridden: %d", got)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for content, want := range map[string]int64{"max\n": 0, "268435456\n": 268435456, "junk": 0, "0": 0} {
		p := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := cgroupMemoryLimit(p); got != want {
			t.Errorf("memory.max %q: %d, want %d", content, got, want)
		}
	}
	if got := cgroupMemoryLimit(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("missing file: %d", got)
	}
}

// TuneProcs changes a process-wide setting: this test is not parallel and restores it.
func TestTuneProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))

	if got := TuneProcs([]string{"PATH=/bin"}); got != DefaultProcs || runtime.GOMAXPROCS(0) != DefaultProcs {
		t.Fatalf("default: TuneProcs = %d, GOMAXPROCS = %d, want %d", got, runtime.GOMAXPROCS(0), DefaultProcs)
	}
	// The operator's GOMAXPROCS, which the Go runtime applied at start, is left alone.
	runtime.GOMAXPROCS(3)
	if got := TuneProcs([]string{"GOMAXPROCS=3"}); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("operator's setting: TuneProcs = %d, GOMAXPROCS = %d, want 3", got, runtime.GOMAXPROCS(0))
	}
	// GOMAXPROCS=0 asks for Go's own default, which the runtime applied at start.
	if got := TuneProcs([]string{"GOMAXPROCS=0"}); got != 3 {
		t.Fatalf("GOMAXPROCS=0: TuneProcs = %d, want Go's setting (3) left alone", got)
	}
}
