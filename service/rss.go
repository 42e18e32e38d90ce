package service

import (
	"bytes"
	"os"
	"strconv"
)

// RSSBytes returns the process's resident set size: the memory it holds in RAM now, which is
// what the workers page shows and what a container's memory limit counts (the Go heap figures
// leave out the runtime's own memory and freed spans not yet returned). It reads
// /proc/self/statm, so it is 0 where there is none (outside Linux) or it cannot be read.
// Workers send it in their heartbeats (message.Heartbeat.RSSBytes).
func RSSBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	return parseStatm(b, os.Getpagesize())
}

// parseStatm returns the resident size in bytes from the text of /proc/PID/statm ("size
// resident shared text lib data dt", in pages); 0 when it is malformed.
func parseStatm(b []byte, pageSize int) int64 {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil || pages < 0 {
		return 0
	}
	return pages * int64(pageSize)
}
