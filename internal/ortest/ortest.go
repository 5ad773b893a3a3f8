// Package ortest gives test binaries the real ONNX Runtime. Tests never skip
// for a missing runtime: `make test` installs it, and a test binary that
// cannot start it exits with the reason.
package ortest

import (
	"fmt"
	"os"
	"testing"

	"github.com/modelgate/modelgate/serving"
)

// Main starts a CPU runtime with one intra-op thread, stores it in *rt, runs
// the tests, closes the runtime and exits; call it from TestMain.
func Main(m *testing.M, rt **serving.Runtime) {
	r, err := serving.NewRuntime(serving.Options{Providers: []string{serving.ProviderCPU}, IntraOpThreads: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "these tests need ONNX Runtime:", err)
		os.Exit(1)
	}
	*rt = r
	code := m.Run()
	r.Close()
	os.Exit(code)
}
