package pgtest

import "syscall"

// sysProcAttr runs the child as cred (nil: as ourselves) and makes the
// kernel kill it if the test process dies first (a panic or a test
// timeout), so no server outlives its test binary. (Linux sends the signal
// when the forking thread exits; Go keeps its threads for the life of the
// process unless a goroutine exits while locked to one.) Go sets the
// parent-death signal after switching credentials, so the switch does not
// clear it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
