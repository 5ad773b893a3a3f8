package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/registry/registrytest"
)

// casHelperEnv, when set to a directory, turns the test binary into a
// helper process for TestLocalWriteIfAcrossProcesses.
const casHelperEnv = "MODELGATE_REGISTRY_CAS_HELPER_ROOT"

// Increments each helper process makes.
const casIncrements = 40

func TestMain(m *testing.M) {
	if root := os.Getenv(casHelperEnv); root != "" {
		os.Exit(casHelper(root))
	}
	goleak.VerifyTestMain(m)
}

func newLocal(t *testing.T) registry.Bucket {
	t.Helper()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalAcceptance(t *testing.T) {
	registrytest.AcceptanceTest(t, newLocal)
}

// TestLocalWriteIfAcrossInstances races WriteIf through independent
// LocalBuckets on one root, as separate replicas would.
func TestLocalWriteIfAcrossInstances(t *testing.T) {
	tests := []struct {
		name   string
		create bool
	}{
		{"create if absent", true},
		{"replace if match", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			buckets := make([]*registry.LocalBucket, 4)
			for i := range buckets {
				var err error
				if buckets[i], err = registry.NewLocal(root); err != nil {
					t.Fatal(err)
				}
			}
			etag := ""
			if !tc.create {
				var err error
				if etag, err = buckets[0].WriteIf(t.Context(), "state", []byte("initial"), ""); err != nil {
					t.Fatal(err)
				}
			}
			const writers = 16
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					<-start
					_, errs[i] = buckets[i%len(buckets)].WriteIf(t.Context(), "state", []byte(strconv.Itoa(i)), etag)
				})
			}
			close(start)
			wg.Wait()

			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, registry.ErrConflict):
					t.Errorf("writer %d: %v", i, err)
				}
			}
			if won != 1 {
				t.Errorf("%d writers won, want exactly 1", won)
			}
		})
	}
}

// TestLocalWriteIfAcrossProcesses has several processes increment one
// counter with read and WriteIf; a lost update would leave it short.
func TestLocalWriteIfAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs = 4
	root := t.TempDir()
	type child struct {
		cmd   *exec.Cmd
		start io.WriteCloser
		out   strings.Builder
	}
	children := make([]*child, procs)
	for i := range children {
		c := &child{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")}
		c.cmd.Env = append(os.Environ(), casHelperEnv+"="+root)
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		var err error
		if c.start, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	// Every child waits for its stdin to close, so they start together.
	for _, c := range children {
		_ = c.start.Close()
	}
	conflicts := 0
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v\n%s", i, err, c.out.String())
		}
		n, err := strconv.Atoi(strings.TrimSpace(c.out.String()))
		if err != nil {
			t.Fatalf("helper %d printed %q", i, c.out.String())
		}
		conflicts += n
	}
	b, err := registry.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := b.ReadVersioned(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), strconv.Itoa(procs*casIncrements); got != want {
		t.Errorf("counter = %s, want %s", got, want)
	}
	t.Logf("%d processes, %d increments each, %d conflicts retried", procs, casIncrements, conflicts)
}

// casHelper waits for stdin to close, then increments the counter under
// root casIncrements times, retrying on conflicts, and prints how many
// conflicts it met. It returns the process exit code.
func casHelper(root string) int {
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	ctx := context.Background()
	b, err := registry.NewLocal(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conflicts := 0
	for range casIncrements {
		for attempt := 0; ; attempt++ {
			if attempt == 100000 {
				fmt.Fprintln(os.Stderr, "no progress after 100000 attempts")
				return 1
			}
			n, etag := 0, ""
			data, tag, err := b.ReadVersioned(ctx, "counter")
			switch {
			case err == nil:
				if n, err = strconv.Atoi(string(data)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				etag = tag
			case !errors.Is(err, registry.ErrNotFound):
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			_, err = b.WriteIf(ctx, "counter", []byte(strconv.Itoa(n+1)), etag)
			if err == nil {
				break
			}
			if !errors.Is(err, registry.ErrConflict) {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			conflicts++
		}
	}
	fmt.Println(conflicts)
	return 0
}

// TestLocalIgnoresCrashLeftovers plants what a crash or other writers
// leave behind (temporary files, lock files) and checks that nothing shows
// them.
func TestLocalIgnoresCrashLeftovers(t *testing.T) {
	root := t.TempDir()
	b, err := registry.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(b, registry.Options{})
	ctx := t.Context()
	if _, _, err := store.Push(ctx, reg, registry.PushRequest{Name: "iris", Version: "1", Model: []byte("model")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"models/.tmp-123",
		"models/iris/versions/1/.tmp-456",
		"models/ghost/versions/1/.tmp-789",
		"models/locked/.lock",
		"models/iris/versions/.lock",
		".tmp-top",
	} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"models/"}},
		{"models/", []string{"iris/"}},
		{"models/iris/", []string{"release.json", "versions/"}},
		{"models/iris/versions/1/", []string{"manifest.json", "model.onnx"}},
		{"models/ghost/", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("List(%q)", tc.prefix), func(t *testing.T) {
			got, err := b.List(ctx, tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
	if models, err := reg.Models(ctx); err != nil || strings.Join(models, ",") != "iris" {
		t.Errorf("Models = %q, %v; want [iris]", models, err)
	}
	if data, _, err := reg.Fetch(ctx, "iris", "1"); err != nil || string(data) != "model" {
		t.Errorf("Fetch = %q, %v", data, err)
	}
}

// TestLocalKeys checks the keys the local backend refuses, including on
// top of ValidateKey the names it reserves for temporary and lock files. Nothing may
// be created outside the root.
func TestLocalKeys(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	b, err := registry.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, key := range []string{"../escape", "a/../../escape", "/escape", ".tmp-x", "a/.tmp-x/b", ".lock", "a/.lock/b"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			if err := b.Upload(ctx, key, strings.NewReader("x")); !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("Upload: error = %v, want ErrInvalidName", err)
			}
			if _, err := b.WriteIf(ctx, key, []byte("x"), ""); !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("WriteIf: error = %v, want ErrInvalidName", err)
			}
			if rc, err := b.Get(ctx, key); !errors.Is(err, registry.ErrInvalidName) {
				if rc != nil {
					_ = rc.Close()
				}
				t.Errorf("Get: error = %v, want ErrInvalidName", err)
			}
			if _, _, err := b.ReadVersioned(ctx, key); !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("ReadVersioned: error = %v, want ErrInvalidName", err)
			}
		})
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "root" {
		t.Errorf("files next to the root: %v", entries)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("refused writes left %v in the root", entries)
	}
}

func TestNewLocal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		root    string
		wantErr bool
	}{
		{"missing directories are created", filepath.Join(dir, "a", "b"), false},
		{"existing directory", dir, false},
		{"empty", "", true},
		{"a file", file, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := registry.NewLocal(tc.root)
			if tc.wantErr {
				if err == nil {
					t.Errorf("NewLocal(%q) succeeded, want an error", tc.root)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(tc.root); err != nil || !fi.IsDir() {
				t.Errorf("root %s: %v", tc.root, err)
			}
			if got, want := b.Describe(), "file://"+filepath.ToSlash(tc.root); got != want {
				t.Errorf("Describe() = %q, want %q", got, want)
			}
		})
	}
}
