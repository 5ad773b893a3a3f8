//go:build !linux

package miniotest

import "syscall"

// sysProcAttr has no parent-death signal to ask for outside Linux: a
// server whose test binary dies without stopping it keeps running.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
