package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// cpuSeconds returns utime+stime of pid from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state), so utime (14) is f[11]
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times %q %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clkTck, nil
}

// statusKB returns a "kB" field of /proc/PID/status, such as VmHWM (peak RSS).
func statusKB(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// resetPeakRSS resets VmHWM of pid (Linux ≥ 4.0: write 5 to clear_refs).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// pidsByComm lists the processes whose command name is comm (beam.smp, postgres).
func pidsByComm(comm string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	var out []int
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil || strings.TrimSpace(string(raw)) != comm {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(d))); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// group sums the CPU time of a changing set of processes (all postgres backends, say). A process
// first seen in the final sample counts from zero; one gone by then is lost (noted in the docs).
type group struct {
	comm  string
	start map[int]float64
}

func startGroup(comm string) *group {
	g := &group{comm: comm, start: map[int]float64{}}
	for _, pid := range pidsByComm(comm) {
		if c, err := cpuSeconds(pid); err == nil {
			g.start[pid] = c
		}
	}
	return g
}

// delta returns the CPU seconds used since startGroup, and whether any process was readable.
func (g *group) delta() (float64, bool) {
	var sum float64
	ok := false
	for _, pid := range pidsByComm(g.comm) {
		c, err := cpuSeconds(pid)
		if err != nil {
			continue
		}
		ok = true
		sum += c - g.start[pid]
	}
	return sum, ok
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}
