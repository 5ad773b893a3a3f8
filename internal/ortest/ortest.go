// Package ortest gives test binaries the real ONNX Runtime. Tests never skip
// for a missing runtime in `make test`, which installs it: a test binary
// that cannot start it fails with the reason. Under -short, the fast tier
// (`make test-unit`, which runs without ONNX Runtime), the tests that need
// it are skipped instead.
package ortest

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/modelgate/modelgate/serving"
)

var (
	once sync.Once
	rt   *serving.Runtime
	err  error
)

func start() {
	rt, err = serving.NewRuntime(serving.Options{Providers: []string{serving.ProviderCPU}, IntraOpThreads: 1})
}

// Runtime returns the test binary's CPU runtime with one intra-op thread,
// started on first use: t fails when it cannot start, and is skipped under
// -short.
func Runtime(tb testing.TB) *serving.Runtime {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs ONNX Runtime: -short (make test-unit) runs without it; make test runs this")
	}
	once.Do(start)
	if err != nil {
		tb.Fatalf("this test needs ONNX Runtime: %v", err)
	}
	return rt
}

// Run runs the tests and closes the runtime if one was started; call it
// from TestMain as os.Exit(ortest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if rt != nil {
		rt.Close()
	}
	return code
}

// Main starts the runtime before any test, stores it in *r, runs the tests,
// closes the runtime and exits: for packages whose every test runs models
// on it. Under -short it runs no test at all.
func Main(m *testing.M, r **serving.Runtime) {
	if isShort() {
		fmt.Println("skipped: every test of this package needs ONNX Runtime (-short, make test-unit, runs without it)")
		os.Exit(0)
	}
	once.Do(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "these tests need ONNX Runtime:", err)
		os.Exit(1)
	}
	*r = rt
	os.Exit(Run(m))
}

// isShort is testing.Short, callable from TestMain before m.Run (which
// would parse the flags itself).
func isShort() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	return testing.Short()
}
