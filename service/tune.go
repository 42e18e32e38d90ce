package service

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is the crawler's and the processor's GOGC when the operator sets none. Both
// allocate a lot per page on a small live heap (a few MB), so the Go default (collect when the
// heap doubles) collects dozens of times a second: a fifth of their CPU in the benchmark.
// GOGC=400 collects a quarter as often for some tens of MB more (docs/PERFORMANCE.md).
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent unless environ sets GOGC, and the soft memory limit limit
// (lowered to 80% of the container's memory limit, cgroup v2, when that is lower) unless it sets
// GOMEMLIMIT. The limit keeps the higher GOGC from growing the heap without bound when the live
// heap is large: near it the collector runs as often as it must. Callers pass their expected
// worst-case live heap plus headroom, so that the limit never sits below what they really hold
// (which would make the collector run continuously). It returns the settings in force, for the
// start-up log.
func TuneGC(environ []string, limit int64) (gogc string, memoryLimit int64) {
	env := envMap(environ)
	gogc = env["GOGC"]
	if gogc == "" {
		debug.SetGCPercent(DefaultGCPercent)
		gogc = strconv.Itoa(DefaultGCPercent)
	}
	if env["GOMEMLIMIT"] == "" {
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

// DefaultProcs is the crawler's and the processor's GOMAXPROCS when the operator sets none: one
// core per worker. They scale out, one worker per core (docker compose --scale), and they share
// their machine with the broker, the database and other workers; a Go runtime with idle
// processors to spare wakes threads to look for work on every network event, which on a busy
// machine is CPU taken from the others (about 8% of the end-to-end throughput on 2 cores,
// docs/PERFORMANCE.md). One core runs a crawler at several thousand pages/s of extraction.
const DefaultProcs = 1

// TuneProcs applies DefaultProcs unless environ sets GOMAXPROCS, and returns the setting in
// force, for the start-up log.
func TuneProcs(environ []string) int {
	if envMap(environ)["GOMAXPROCS"] == "" {
		runtime.GOMAXPROCS(DefaultProcs)
	}
	return runtime.GOMAXPROCS(0)
}
