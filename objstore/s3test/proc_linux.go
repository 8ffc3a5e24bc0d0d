package s3test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the server if the test process dies
// first (a panic or a test timeout), so no server outlives its test. (Linux
// sends it when the forking thread exits; Go keeps its threads for the life
// of the process unless a goroutine exits while locked to one.)
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
