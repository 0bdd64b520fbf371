//go:build !linux

package e2e

import "syscall"

// serverProcAttr: elsewhere, servers are stopped by the tests' cleanup only.
func serverProcAttr() *syscall.SysProcAttr { return nil }
