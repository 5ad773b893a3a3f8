package serving

import (
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
)

// CPUQuota is the number of CPUs this process may use: the cgroup CPU limit
// of its container (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us over
// cpu.cfs_period_us), rounded up, never more than the machine's cores and
// never less than 1. Without a limit it is the machine's core count.
func CPUQuota() int { return cpuQuota(os.DirFS("/sys/fs/cgroup"), numCPU()) }

func cpuQuota(cgroup fs.FS, cores int) int {
	limit := math.Inf(1)
	if b, err := fs.ReadFile(cgroup, "cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, err1 := strconv.ParseFloat(f[0], 64)
			p, err2 := strconv.ParseFloat(f[1], 64)
			if err1 == nil && err2 == nil && q > 0 && p > 0 {
				limit = q / p
			}
		}
	} else {
		q, err1 := readInt(cgroup, "cpu/cpu.cfs_quota_us")
		p, err2 := readInt(cgroup, "cpu/cpu.cfs_period_us")
		if err1 == nil && err2 == nil && q > 0 && p > 0 {
			limit = float64(q) / float64(p)
		}
	}
	n := cores
	if !math.IsInf(limit, 1) && int(math.Ceil(limit)) < n {
		n = int(math.Ceil(limit))
	}
	return max(n, 1)
}

func readInt(fsys fs.FS, name string) (int64, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
