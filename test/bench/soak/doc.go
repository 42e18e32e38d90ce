// Package soak is the soak benchmark (`make soak`, not part of CI): it runs the real binaries
// against a large synthetic site for SOAK_DURATION, samples every worker's RSS
// (/proc/PID/status VmRSS) and goroutine count (/healthz) and the queue depths every
// SOAK_INTERVAL, prints a table, and fails if RSS or goroutines drift by more than ±10% after
// the warm-up.
package soak
