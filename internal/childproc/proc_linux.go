//go:build linux

package childproc

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child when the test binary
// dies, so that no child outlives a crashed or timed-out test.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
