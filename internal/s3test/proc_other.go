//go:build !linux

package s3test

import "os/exec"

// setDeathSignal does nothing off Linux: there is no parent-death signal,
// and Close (or test cleanup) is the only thing that stops the server.
func setDeathSignal(cmd *exec.Cmd) {}
