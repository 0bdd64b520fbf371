package e2e

import "syscall"

// serverProcAttr puts a server the tests start (MinIO) in its own process
// group and has the kernel kill it if the test binary dies without
// stopping it (a test timeout, a crash).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
