//go:build linux

package miniotest

import "syscall"

// sysProcAttr makes the kernel kill the server when the test process dies
// without stopping it (a panic in another goroutine, go test's timeout),
// so that no server outlives its test binary. (Linux sends the signal when
// the thread that started the server exits; the Go runtime keeps its
// threads unless a goroutine locked to one exits, which tests do not do.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
