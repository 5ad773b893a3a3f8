package registry

import (
	"fmt"
	"strings"
)

// maxNameLen is the longest name or version the rule allows.
const maxNameLen = 63

// nameRule is the naming rule as users read it in error messages.
const nameRule = `^[a-z0-9][a-z0-9._-]{0,62}$ without ".."`

// ValidateName reports whether s may be used as a model name or a version:
// it matches ^[a-z0-9][a-z0-9._-]{0,62}$ and does not contain "..". The
// error wraps ErrInvalidName and names the offending value and the rule.
func ValidateName(s string) error {
	return validateName("name", s)
}

// validateName checks s against the naming rule; kind ("name", "version")
// says which part of a request s is.
func validateName(kind, s string) error {
	if !nameOK(s) {
		return fmt.Errorf("%w: %s %q must match %s", ErrInvalidName, kind, s, nameRule)
	}
	return nil
}

// nameOK is the naming rule, written out so that it costs no regexp and so
// that the fuzz test can hold it against the regexp.
func nameOK(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// ValidateKey reports whether key is a well-formed bucket key: non-empty,
// relative (no leading "/"), without empty, "." or ".." segments, and
// without backslashes or NUL bytes. Backends call it before they touch
// storage; the error wraps ErrInvalidName.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidName)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: key %q contains a backslash or a NUL byte", ErrInvalidName, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key %q has an empty segment or a leading or trailing slash", ErrInvalidName, key)
		case ".", "..":
			return fmt.Errorf("%w: key %q has a %q segment", ErrInvalidName, key, seg)
		}
	}
	return nil
}

// validatePrefix accepts the prefixes List takes: "" (the top) or a valid
// key followed by "/".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: list prefix %q must be empty or end with \"/\"", ErrInvalidName, prefix)
	}
	return ValidateKey(strings.TrimSuffix(prefix, "/"))
}

// The object names inside a version.
const (
	modelObject    = "model.onnx"
	manifestObject = "manifest.json"
	holdoutObject  = "holdout.csv"
	releaseObject  = "release.json"
)

// modelsPrefix is the prefix under which every model lives.
const modelsPrefix = "models/"

// The key builders below take names that have already been validated.

func modelPrefix(name string) string { return modelsPrefix + name + "/" }

func versionsPrefix(name string) string { return modelPrefix(name) + "versions/" }

func versionKey(name, version, object string) string {
	return versionsPrefix(name) + version + "/" + object
}

func releaseKey(name string) string { return modelPrefix(name) + releaseObject }
