package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// wrkScript makes wrk POST the body in body.json and print, when done, one
// line "MGBENCH {json}" with the counts and latency percentiles.
const wrkScript = `wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(%q, "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('MGBENCH {"requests":%%d,"duration_us":%%d,"non2xx":%%d,"errors":%%d,"p50_us":%%d,"p99_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
`

// wrkResult is the MGBENCH line.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Non2xx     int64   `json:"non2xx"`
	Errors     int64   `json:"errors"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	MeanUS     float64 `json:"mean_us"`
	// CPUSecs is wrk's own CPU time (user + system), measured by the
	// bench, not printed by wrk.
	CPUSecs float64 `json:"-"`
}

// parseWrk finds the MGBENCH line in wrk's output.
func parseWrk(out string) (wrkResult, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MGBENCH "); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return wrkResult{}, fmt.Errorf("wrk summary %q: %w", rest, err)
			}
			if r.DurationUS <= 0 {
				return wrkResult{}, errors.New("wrk ran for no time")
			}
			return r, nil
		}
	}
	return wrkResult{}, fmt.Errorf("no MGBENCH line in wrk's output:\n%s", out)
}

// runWrk loads url with body at c connections for d.
func runWrk(ctx context.Context, dir, url string, body []byte, c int, d time.Duration) (wrkResult, error) {
	bodyFile := filepath.Join(dir, "body.json")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return wrkResult{}, err
	}
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(wrkScript, bodyFile)), 0o644); err != nil {
		return wrkResult{}, err
	}
	threads := min(c, 2)
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, "wrk", "-t", fmt.Sprint(threads), "-c", fmt.Sprint(c), "-d", fmt.Sprintf("%ds", secs),
		"--timeout", "10s", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, err
	}
	r.CPUSecs = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r, nil
}

// runLoad runs the bench's own load generator (bench load) in a child
// process, so that its CPU time is measured apart from the server's.
func runLoad(ctx context.Context, dir, protocol, target string, body []byte, headerLen, c int, d time.Duration) (wrkResult, error) {
	self, err := os.Executable()
	if err != nil {
		return wrkResult{}, err
	}
	bodyFile := filepath.Join(dir, "body.bin")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return wrkResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "load", "-proto", protocol, "-target", target, "-body", bodyFile,
		"-header-len", fmt.Sprint(headerLen), "-c", fmt.Sprint(c), "-duration", d.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("bench load: %v\n%s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, err
	}
	if _, first, ok := strings.Cut(string(out), "load: first failure:"); ok {
		fmt.Printf("(first failure: %s) ", strings.TrimSpace(first))
	}
	r.CPUSecs = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r, nil
}
