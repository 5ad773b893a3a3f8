package serving

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
)

// TestLoop: the benchmark's in-process limit binds any model whose FP32
// and INT64 tensors are a batch of fixed rows, runs it, and says why it
// refuses others.
func TestLoop(t *testing.T) {
	rt := testRT
	dir := t.TempDir()
	write := func(name string, model []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, model, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	l, err := rt.NewLoop(write("image.onnx", testmodels.Image(8, 8)), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Rows() != 3 {
		t.Fatalf("rows %d", l.Rows())
	}
	for range 2 {
		if err := l.Run(); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct {
		model []byte
		want  string
	}{
		"dynamic inner dimension": {testmodels.Identity(onnx.Float, -1, -1), "fixed dimensions after the batch"},
		"strings":                 {testmodels.Identity(onnx.String, -1), "FP32 and INT64 tensors"},
	} {
		_, err := rt.NewLoop(write(name+".onnx", c.model), 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
}
