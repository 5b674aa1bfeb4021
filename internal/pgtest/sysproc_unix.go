//go:build unix && !linux

package pgtest

import "syscall"

// quitSignal makes the postmaster do an immediate shutdown: it kills its backends at once and
// skips the shutdown checkpoint, so the next start runs crash recovery, as after a crash.
const quitSignal = syscall.SIGQUIT

// sysProcAttr runs a child as a (nil: the current user).
func sysProcAttr(a *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
	return attr
}
