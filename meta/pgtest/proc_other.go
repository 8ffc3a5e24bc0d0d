//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs the child as cred (nil: as ourselves). There is no
// parent-death signal here: a test binary that dies leaves its server.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
