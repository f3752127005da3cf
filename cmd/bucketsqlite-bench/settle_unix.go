//go:build unix

package main

import "syscall"

// settle asks the kernel to write back every dirty page now, so that the
// writes of a scenario's setup (seeding, a base upload) are not paid for
// by the first measurement after it.
func settle() { syscall.Sync() }
