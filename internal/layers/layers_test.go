package layers

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/modelgate/modelgate/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// packages lists the module's packages with their imports and deps (tests
// left out: the rule is about what a package links).
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// layerOf is the layer of a package below the module, -1 when no layer
// names it.
func layerOf(path string) int {
	for i, layer := range Layers {
		for _, p := range layer {
			if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
				return i
			}
		}
	}
	return -1
}

// TestLayers: every package has a layer, and imports only packages of
// lower layers.
func TestLayers(t *testing.T) {
	for _, p := range packages(t) {
		path := strings.TrimPrefix(p.ImportPath, module)
		l := layerOf(path)
		if l < 0 {
			t.Errorf("%s has no layer: add it to layers.Layers and docs/architecture.md", path)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if dl := layerOf(dep); dl >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d): a package imports only lower layers", path, l, dep, dl)
			}
		}
	}
}

// TestONNXRuntimeOnlyInServing: only serving imports onnxruntime_go; the
// registry links none of the release logic; drift, the release logic and
// the wire format link no ONNX Runtime; the wire format links no gRPC.
func TestONNXRuntimeOnlyInServing(t *testing.T) {
	const ort = "github.com/yalue/onnxruntime_go"
	for _, p := range packages(t) {
		path := strings.TrimPrefix(p.ImportPath, module)
		if slices.Contains(p.Imports, ort) && path != "serving" {
			t.Errorf("%s imports onnxruntime_go; only serving may", path)
		}
		links := func(dep string) bool { return slices.Contains(p.Deps, dep) }
		switch path {
		case "registry":
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module+"canary") {
					t.Errorf("registry links %s: it stores release states and decides nothing", d)
				}
			}
		case "drift", "stats", "semantics", "wire", "canary", "canary/release", "canary/release/store":
			if links(ort) {
				t.Errorf("%s links ONNX Runtime", path)
			}
		}
		// The tensor and its JSON and binary codecs link no gRPC: gRPC's
		// codec is wire/grpcwire, for the programs that speak it.
		if path == "wire" && (links("google.golang.org/grpc") || links("google.golang.org/protobuf/proto")) {
			t.Errorf("wire links gRPC or protobuf: its gRPC codec belongs in wire/grpcwire")
		}
	}
}

// forbidden are imports the layering would allow but the design does not,
// as docs/architecture.md's table states them: a package's direct imports.
var forbidden = map[string][]string{
	"stats":          {"serving"},
	"drift":          {"serving", "validation"},
	"canary":         {"registry", "serving"},
	"config":         {"serving"},
	"canary/rollout": {"registry"},
	"server":         {"registry", "validation"},
	"validation":     {"catalog", "server"},
}

// TestForbiddenImports: no package imports what the table says it may not.
func TestForbiddenImports(t *testing.T) {
	seen := 0
	for _, p := range packages(t) {
		path := strings.TrimPrefix(p.ImportPath, module)
		no, ok := forbidden[path]
		if !ok {
			continue
		}
		seen++
		for _, imp := range p.Imports {
			if dep, ours := strings.CutPrefix(imp, module); ours && slices.Contains(no, dep) {
				t.Errorf("%s imports %s, which docs/architecture.md says it may not", path, dep)
			}
		}
	}
	if seen != len(forbidden) {
		t.Errorf("found %d of the %d packages the rule names: update forbidden", seen, len(forbidden))
	}
}
