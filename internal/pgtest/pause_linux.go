package pgtest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var errNotRunning = errors.New("pgtest: the server is not running")

// freeze stops the postmaster first, so that it forks nothing more, then every process
// whose parent it is. It returns the pids it stopped, postmaster last.
func freeze(postmaster int) ([]int, error) {
	if err := syscall.Kill(postmaster, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pgtest: pause: %w", err)
	}
	children, err := childrenOf(postmaster)
	if err != nil {
		_ = syscall.Kill(postmaster, syscall.SIGCONT)
		return nil, fmt.Errorf("pgtest: pause: %w", err)
	}
	var pids []int
	for _, pid := range children {
		if syscall.Kill(pid, syscall.SIGSTOP) == nil { // one that just exited is gone
			pids = append(pids, pid)
		}
	}
	return append(pids, postmaster), nil
}

// thaw continues the processes freeze stopped, in its order: children first.
func thaw(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// childrenOf returns the pids of the processes whose parent is ppid, from /proc.
func childrenOf(ppid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses, so read
		// after the last ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) >= 2 && fields[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killTree stops the postmaster (so that it forks nothing more), SIGKILLs every process it
// forked and then itself, and waits until the children are gone (exited, or zombies whose
// resources are released), so that a new postmaster finds no process attached to the old
// shared memory.
func killTree(postmaster int) error {
	if err := syscall.Kill(postmaster, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pgtest: crash: %w", err)
	}
	children, err := childrenOf(postmaster)
	if err != nil {
		_ = syscall.Kill(postmaster, syscall.SIGCONT)
		return fmt.Errorf("pgtest: crash: %w", err)
	}
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(postmaster, syscall.SIGKILL)
	deadline := time.Now().Add(killGrace)
	for _, pid := range children {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// alive reports whether pid runs (a zombie does not: it holds nothing but its entry).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
