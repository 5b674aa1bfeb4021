package pgtest

import "syscall"

// quitSignal makes the postmaster do an immediate shutdown: it kills its backends at once and
// skips the shutdown checkpoint, so the next start runs crash recovery, as after a crash.
const quitSignal = syscall.SIGQUIT

// sysProcAttr runs a child as a (nil: the current user). Pdeathsig makes the kernel stop the
// postmaster when this process dies without calling Stop (a panic, os.Exit, a killed
// go test), so no server outlives its test binary. The kernel sends it when the forking OS
// thread exits, which the Go runtime does only for goroutines that die locked to their
// thread; Start is not called from such a goroutine.
func sysProcAttr(a *account) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: quitSignal}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
	return attr
}
