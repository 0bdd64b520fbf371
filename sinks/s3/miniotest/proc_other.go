//go:build !linux

package miniotest

import "syscall"

// procAttr keeps the default process attributes where Linux's parent-death
// signal is unavailable.
func procAttr() *syscall.SysProcAttr { return nil }
