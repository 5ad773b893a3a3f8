package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runGatewayEnv makes the test binary act as the gateway itself, so that
// the shutdown test can send a real SIGTERM to a real process.
const runGatewayEnv = "MODELGATE_TEST_RUN_GATEWAY"

func TestMain(m *testing.M) {
	if os.Getenv(runGatewayEnv) == "1" {
		main()
		return
	}
	flag.Parse()
	if testing.Short() {
		// Every test here starts real gateways on ONNX Runtime (some with
		// MinIO or Prometheus), which the fast tier does without.
		fmt.Println("skipped: the gateway's end-to-end tests (-short, make test-unit, runs without them)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSIGTERMDrainsUnderLoad sends SIGTERM to a gateway under load, with
// the clients behaving as a load balancer does: they keep sending until
// they have seen /readyz fail, then stop. /readyz answers 503 at once,
// /predict keeps answering through the drain delay, every request gets its
// answer (zero errors, zero refused connections), and the process exits 0
// once the listener has closed and in-flight requests are done.
func TestSIGTERMDrainsUnderLoad(t *testing.T) {
	dir := t.TempDir()
	pushDemo(t, dir)
	addr := freePort(t)
	cmd := exec.Command(os.Args[0], "--listen", addr, "--grpc-listen", "127.0.0.1:0", "--registry", dir, "--providers", "cpu", "--log-format", "json")
	cmd.Env = append(os.Environ(), runGatewayEnv+"=1", "MODELGATE_HTTP_DRAIN_DELAY=1500ms", "MODELGATE_CACHE_DIR="+t.TempDir())
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	waitFor(t, 60*time.Second, "gateway ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	row := `{"features":[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189]}`
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var mu sync.Mutex
	var answered int
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(base+"/predict", "application/json", strings.NewReader(row))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				default:
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
					} else {
						answered++
					}
				}
				mu.Unlock()
			}
		}()
	}
	waitFor(t, 10*time.Second, "load running", func() bool { mu.Lock(); defer mu.Unlock(); return answered > 50 })
	// A request in flight across the listener's close: headers and half
	// the body now, the rest once new connections are refused.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", addr, len(row), row[:len(row)/2])
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	// Readiness fails at once (well within the drain delay) ...
	waitFor(t, time.Second, "readyz 503 after SIGTERM", func() bool {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	notReadyAfter := time.Since(sent)
	mu.Lock()
	before := answered
	mu.Unlock()
	// ... while predictions keep being answered during the drain delay.
	waitFor(t, time.Second, "answers during the drain", func() bool { mu.Lock(); defer mu.Unlock(); return answered > before+20 })
	// The load balancer has seen readiness fail: it stops sending here.
	close(stop)
	wg.Wait()
	waitFor(t, 10*time.Second, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if _, err := io.WriteString(slow, row[len(row)/2:]); err != nil {
		t.Fatalf("finishing the in-flight request: %v", err)
	}
	reply, err := io.ReadAll(slow)
	if err != nil || !strings.HasPrefix(string(reply), "HTTP/1.1 200") || !strings.Contains(string(reply), `"prediction":[0]`) {
		t.Fatalf("in-flight request across the close: %v %q", err, reply)
	}
	waitExit(t, cmd, 30*time.Second, &logs)
	if len(failures) > 0 {
		t.Fatalf("%d accepted requests failed; first: %s", len(failures), failures[0])
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", logs.String())
	}
	t.Logf("readyz 503 %s after SIGTERM; %d answered (%d during the drain), 0 failed; a request in flight across the close answered; exit 0", notReadyAfter.Round(time.Millisecond), answered, answered-before)
}

// waitExit waits for the gateway process to exit 0 after SIGTERM, failing
// with its logs when it exits otherwise or not within timeout.
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration, logs fmt.Stringer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("gateway exited with %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(timeout):
		t.Fatalf("gateway did not exit within %s of SIGTERM; logs:\n%s", timeout, logs.String())
	}
}
