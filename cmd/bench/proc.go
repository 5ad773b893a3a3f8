package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat (100 on every mainstream architecture).
const clockTicks = 100

// procStat is what /proc/<pid>/stat says about CPU time and the parent.
type procStat struct {
	ppid       int
	cpuSeconds float64 // utime + stime
}

// parseStat reads a /proc/<pid>/stat line. The command name is in
// parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15), 1-based in proc(5).
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short stat line %q", line)
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("bad stat line %q", line)
	}
	return procStat{ppid: ppid, cpuSeconds: float64(ut+st) / clockTicks}, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// tree is pid and its descendants (uvicorn's workers are children).
func tree(pid int) []int {
	children := map[int][]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil {
			children[st.ppid] = append(children[st.ppid], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuSeconds is the CPU time used by pid and its descendants alive now.
func cpuSeconds(pid int) (float64, error) {
	var sum float64
	for _, p := range tree(pid) {
		st, err := readStat(p)
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue
		}
		sum += st.cpuSeconds
	}
	return sum, nil
}

// peakRSS is the summed peak resident set size (VmHWM) of pid and its
// descendants, in bytes.
func peakRSS(pid int) (int64, error) {
	var sum int64
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		kb, ok := parseHWM(string(b))
		if ok {
			sum += kb * 1024
		}
	}
	if sum == 0 {
		return 0, fmt.Errorf("no VmHWM for %d", pid)
	}
	return sum, nil
}

func parseHWM(status string) (int64, bool) {
	for line := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb, err == nil
			}
		}
	}
	return 0, false
}
