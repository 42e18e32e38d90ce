package service

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Garbage collector defaults for the crawler and the processor, used when GOGC or GOMEMLIMIT is
// not set. Both allocate a lot per page on a small live heap (a few MB), so the Go default
// (collect when the heap doubles) collects dozens of times a second: a fifth of their CPU in
// the benchmark. GOGC=400 collects a quarter as often for some tens of MB more (docs/PERFORMANCE.md).
// The memory limit keeps that from growing without bound when the live heap is large (many
// concurrent fetches of big pages): near the limit the collector runs as often as it must.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 512 << 20
)

// TuneGC applies DefaultGCPercent unless environ sets GOGC, and a soft memory limit unless it
// sets GOMEMLIMIT: DefaultMemoryLimit, or 80% of the container's memory limit (cgroup v2) when
// that is lower. It returns the settings in force, for the start-up log.
func TuneGC(environ []string) (gogc string, memoryLimit int64) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	gogc = env["GOGC"]
	if gogc == "" {
		debug.SetGCPercent(DefaultGCPercent)
		gogc = strconv.Itoa(DefaultGCPercent)
	}
	if env["GOMEMLIMIT"] == "" {
		limit := int64(DefaultMemoryLimit)
		if c := cgroupMemoryLimit("/sys/fs/cgroup/memory.max"); c > 0 {
			limit = min(limit, c/10*8)
		}
		debug.SetMemoryLimit(limit)
	}
	return gogc, debug.SetMemoryLimit(-1) // a negative limit reads the current one
}

// cgroupMemoryLimit reads a cgroup v2 memory.max file: the limit in bytes, or 0 when there is
// none ("max") or it cannot be read.
func cgroupMemoryLimit(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
