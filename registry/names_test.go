package registry_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/registry"
)

// nameRE is the naming rule as DESIGN.md states it; ValidateName is
// written out by hand, so the tests hold the two against each other.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

var nameCases = []struct {
	name  string
	value string
	ok    bool
}{
	{"letters", "iris", true},
	{"digits", "1", true},
	{"semver", "1.2.3", true},
	{"punctuation inside", "breast-cancer_v2.onnx", true},
	{"longest", strings.Repeat("a", 63), true},
	{"trailing dot", "a.", true},
	{"empty", "", false},
	{"too long", strings.Repeat("a", 64), false},
	{"upper case", "Iris", false},
	{"dot", ".", false},
	{"dot dot", "..", false},
	{"parent path", "../x", false},
	{"dot dot inside", "a..b", false},
	{"dot dot at the end", "a..", false},
	{"slash", "a/b", false},
	{"backslash", `a\b`, false},
	{"leading dot", ".hidden", false},
	{"leading dash", "-rf", false},
	{"leading underscore", "_a", false},
	{"space", "a b", false},
	{"NUL", "a\x00", false},
	{"newline", "a\n", false},
	{"non-ASCII", "modèle", false},
}

func TestValidateName(t *testing.T) {
	for _, tc := range nameCases {
		t.Run(tc.name, func(t *testing.T) {
			err := registry.ValidateName(tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok %v", tc.value, err, tc.ok)
			}
			if err != nil && !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", tc.value, err)
			}
		})
	}
}

func FuzzValidateName(f *testing.F) {
	for _, tc := range nameCases {
		f.Add(tc.value)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := registry.ValidateName(s)
		want := nameRE.MatchString(s) && !strings.Contains(s, "..")
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v, but the rule says ok %v", s, err, want)
		}
		if err != nil {
			if !errors.Is(err, registry.ErrInvalidName) {
				t.Fatalf("ValidateName(%q) = %v, want ErrInvalidName", s, err)
			}
			return
		}
		if strings.Contains(s, "/") || strings.Contains(s, "..") || s == "." {
			t.Fatalf("ValidateName accepted %q", s)
		}
		if err := registry.ValidateKey("models/" + s + "/versions/" + s + "/model.onnx"); err != nil {
			t.Fatalf("accepted name %q builds a bad key: %v", s, err)
		}
	})
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"one segment", "release.json", true},
		{"nested", "models/iris/versions/1/model.onnx", true},
		{"dots inside a segment", "a/b..c/d", true},
		{"empty", "", false},
		{"absolute", "/models", false},
		{"trailing slash", "models/", false},
		{"empty segment", "models//iris", false},
		{"dot segment", "models/./iris", false},
		{"parent segment", "models/../../etc/passwd", false},
		{"only parent", "..", false},
		{"backslash", `models\iris`, false},
		{"NUL", "models/\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := registry.ValidateKey(tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
			}
			if err != nil && !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("ValidateKey(%q) = %v, want ErrInvalidName", tc.key, err)
			}
		})
	}
}
