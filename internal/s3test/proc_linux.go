//go:build linux

package s3test

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the server when the process that
// started it dies, so that a crashed or killed test binary leaves no
// server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
