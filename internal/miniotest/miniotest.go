// Package miniotest runs a real MinIO server for tests, so that the S3
// backend is tested against the server it talks to in production rather
// than against a fake.
//
// The server binary is built by `make minio-bin` into
// <module root>/.cache/tools/bin/minio; MODELGATE_MINIO_BIN names another
// one. A missing binary fails the test: it never skips, so that CI cannot
// pass without having run the S3 tests.
//
// Each Server listens on free loopback ports with random root credentials
// and keeps its data in a temporary directory; it is stopped and its data
// removed when the test that started it ends. Starting one takes about a
// second, so a package should start one in a top-level test and give each
// subtest its own bucket (NewBucket) rather than start one per subtest.
package miniotest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvBin names the MinIO server binary to use instead of the one in the
// module's tool cache.
const EnvBin = "MODELGATE_MINIO_BIN"

// binInModule is where `make minio-bin` puts the server, relative to the
// module root.
var binInModule = filepath.Join(".cache", "tools", "bin", "minio")

// Timeouts of the server's life cycle.
const (
	// startTimeout bounds the wait for a started server to be ready; a
	// cold start on a loaded two-core machine takes a few seconds at most.
	startTimeout = 60 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// pollInterval is the pause between two health probes.
	pollInterval = 20 * time.Millisecond
)

// Region is the region of the server and of its buckets.
const Region = "us-east-1"

// Server is a running (or stopped) MinIO server.
type Server struct {
	// Endpoint is the host:port of the S3 API, on 127.0.0.1, plain HTTP.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random for each
	// server.
	AccessKey, SecretKey string

	bin     string
	dataDir string
	certDir string
	logPath string
	console string // host:port of the (disabled) console, reserved for Restart

	mu  sync.Mutex
	run *process // nil while stopped
}

// process is one run of the server binary.
type process struct {
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{} // closed when the process has exited and been reaped
	waitErr error         // set before exited is closed
}

// Start starts a MinIO server and waits until it is ready; the server is
// stopped when t ends. It fails t if the binary is missing or the server
// does not become ready within a minute, with the end of the server's log.
// If the server exits at start, as when another process took one of its
// ports between the probe and the start, Start tries once more on other
// ports.
//
// Under -short (make test-unit, which runs without MinIO) it skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a MinIO server: -short (make test-unit) runs without it; make test runs this")
	}
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{
		AccessKey: "minio-" + strings.ToLower(rand.Text()[:10]),
		SecretKey: rand.Text(),
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		certDir:   filepath.Join(dir, "certs"),
		logPath:   filepath.Join(dir, "minio.log"),
	}
	// The temporary directory is removed after this cleanup, which runs
	// first (cleanups run last in, first out).
	t.Cleanup(s.Stop)
	var err error
	for attempt := range 2 {
		var api, console string
		api, console, err = freeAddrs()
		if err != nil {
			t.Fatalf("miniotest: %v", err)
		}
		s.Endpoint, s.console = api, console
		start := time.Now()
		err = s.start()
		if err == nil {
			t.Logf("miniotest: MinIO ready at %s after %v", s.Endpoint, time.Since(start).Round(time.Millisecond))
			return s
		}
		if !errors.Is(err, errExited) || attempt == 1 {
			break
		}
		t.Logf("miniotest: MinIO exited at start (%v); retrying on other ports", err)
	}
	t.Fatalf("miniotest: %v\n--- end of the MinIO log (%s) ---\n%s", err, s.logPath, s.logTail())
	return nil
}

// Binary returns the path of the MinIO server binary: $MODELGATE_MINIO_BIN,
// or .cache/tools/bin/minio in the module that holds the working
// directory. It fails t if there is none.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := findBinary()
	if err != nil {
		t.Fatalf("MinIO server not found: run `make minio-bin` (or set %s): %v", EnvBin, err)
	}
	return p
}

// findBinary looks for the server binary.
func findBinary() (string, error) {
	if p := os.Getenv(EnvBin); p != "" {
		return p, checkExecutable(p)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, binInModule)
			return p, checkExecutable(p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
		dir = parent
	}
}

// checkExecutable reports whether p is an executable regular file.
func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// freeAddrs returns two loopback addresses whose ports were free a moment
// ago.
func freeAddrs() (api, console string, err error) {
	var addrs [2]string
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", fmt.Errorf("find a free port: %w", err)
		}
		addrs[i] = l.Addr().String()
		defer l.Close() // held until both are chosen, so they differ
	}
	return addrs[0], addrs[1], nil
}

// errExited means that the server exited before it was ready.
var errExited = errors.New("MinIO exited before it was ready")

// start runs the binary on s's ports and data directory and waits until
// the server is live and ready. The caller holds no lock.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("MinIO is already running")
	}
	log, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "server", "--quiet", "--anonymous",
		"--address", s.Endpoint, "--console-address", s.console,
		"--certs-dir", s.certDir, s.dataDir)
	cmd.Env = s.env()
	// An *os.File needs no copying goroutine: the server writes the log
	// directly.
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = log.Close()
		close(p.exited)
	}()
	s.run = p
	if err := s.waitReady(p, startTimeout); err != nil {
		s.stopLocked(syscall.SIGKILL)
		return err
	}
	return nil
}

// env is the server's environment: the test's, without any MinIO or AWS
// settings, plus settings that make a small, quiet, quick server.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "MINIO_") || strings.HasPrefix(k, "_MINIO") || strings.HasPrefix(k, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		// CI/CD mode: small buffer pools (256 MiB rather than half the
		// memory) and no checks that the drive is not the root disk.
		"MINIO_CI_CD=on",
		// The background scanner (lifecycle, usage) has nothing to do here.
		"MINIO_SCANNER_SPEED=slowest",
	)
}

// waitReady polls the health endpoints until the server answers both, it
// exits or the timeout passes.
func (s *Server) waitReady(p *process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	probe := func(path string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+path, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if probe("/minio/health/live") && probe("/minio/health/ready") {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%w: %v", errExited, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("MinIO at %s not ready after %v", s.Endpoint, timeout)
		case <-tick.C:
		}
	}
}

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited after
// 10 seconds. It does nothing if the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGTERM)
}

// Kill kills the server with SIGKILL, as a crash or an outage would, and
// waits for it to exit. Its data stays for Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGKILL)
}

// stopLocked sends sig to the server and waits for it to exit, killing it
// after stopTimeout. The caller holds s.mu.
func (s *Server) stopLocked(sig syscall.Signal) {
	p := s.run
	if p == nil {
		return
	}
	s.run = nil
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Restart starts the server again (stopping it first if it is running) on
// the same ports and data, and waits until it is ready. It fails t if the
// server does not come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	start := time.Now()
	if err := s.start(); err != nil {
		t.Fatalf("miniotest: restart: %v\n--- end of the MinIO log (%s) ---\n%s", err, s.logPath, s.logTail())
	}
	t.Logf("miniotest: MinIO ready again at %s after %v", s.Endpoint, time.Since(start).Round(time.Millisecond))
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return false
	}
	select {
	case <-s.run.exited:
		return false
	default:
		return true
	}
}

// Credentials returns the root credentials as minio-go credentials.
func (s *Server) Credentials() *credentials.Credentials {
	return credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")
}

// Client returns a minio-go client with root credentials, for setting up
// and inspecting tests. It panics if minio-go refuses the endpoint, which
// it cannot do for a host:port on 127.0.0.1.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        s.Credentials(),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		panic(fmt.Sprintf("miniotest: client for %s: %v", s.Endpoint, err))
	}
	return c
}

// NewBucket creates a bucket with a new random name and returns the name,
// so that tests sharing a server do not see each other's objects.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "test-" + strings.ToLower(rand.Text())
	if err := s.Client().MakeBucket(t.Context(), name, minio.MakeBucketOptions{Region: Region}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
	return name
}

// Env returns the environment, as KEY=value pairs, under which
// registry.Open("s3://bucket/prefix") reaches this server: the
// MODELGATE_S3_* settings and the root credentials as AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY. Pass it to a child process, or use Setenv.
func (s *Server) Env() []string {
	return []string{
		"MODELGATE_S3_ENDPOINT=" + s.Endpoint,
		"MODELGATE_S3_INSECURE=true",
		"MODELGATE_S3_REGION=" + Region,
		"MODELGATE_S3_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
}

// Setenv sets Env in the test's process environment until t ends (see
// testing.T.Setenv: not for parallel tests).
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// logTail returns the end of the server's log.
func (s *Server) logTail() string {
	const tailSize = 8 << 10
	f, err := os.Open(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(fi.Size()-tailSize, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(data) == 0 {
		return "(empty)"
	}
	prefix := ""
	if off > 0 {
		prefix = "... (" + strconv.FormatInt(off, 10) + " bytes before)\n"
	}
	return prefix + string(data)
}
