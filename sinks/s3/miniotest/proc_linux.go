package miniotest

import "syscall"

// procAttr puts minio in its own process group, so a terminal's Ctrl-C
// reaches the test binary first and Stop decides how minio ends, and has
// the kernel kill it if the test binary dies without stopping it (a test
// timeout, a crash).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
