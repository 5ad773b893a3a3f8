//go:build !unix

package registry

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// lockFile fails: the local backend relies on flock for its compare-and-swap
// and does not pretend to be safe where flock is missing. Reading a local
// registry works on every platform; writing needs a unix system.
func lockFile(*os.File) error {
	return fmt.Errorf("registry: the local backend cannot lock files on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// unlockFile does nothing, as lockFile never locks.
func unlockFile(*os.File) error { return nil }

// syncDir does nothing: directories cannot be fsynced on these platforms.
func syncDir(string) error { return nil }
