//go:build !linux

package childproc

import "os/exec"

// setDeathSignal does nothing off Linux: there is no parent-death signal,
// and test cleanup (Start kills its children) is what stops a child.
func setDeathSignal(cmd *exec.Cmd) {}
