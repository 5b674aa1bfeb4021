//go:build !unix

package pgtest

import (
	"os"
	"syscall"
)

// quitSignal is the only signal os.Process.Signal delivers here.
var quitSignal = os.Kill

// sysProcAttr runs a child as the current user; there is no root to step down from.
func sysProcAttr(*account) *syscall.SysProcAttr { return nil }
