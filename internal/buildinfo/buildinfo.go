// Package buildinfo carries the version and git revision stamped into the
// binaries at link time (-ldflags -X, see the Makefile and Dockerfile).
package buildinfo

import "runtime/debug"

// Set at link time; "dev" and "unknown" in a plain `go build`.
var (
	Version  = "dev"
	Revision = "unknown"
)

// GoVersion is the Go release the binary was built with.
func GoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}
