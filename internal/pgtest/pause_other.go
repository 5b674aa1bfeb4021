//go:build !linux

package pgtest

import "errors"

var errNotRunning = errors.New("pgtest: the server is not running")

// freeze is Linux only: it needs /proc to find the postmaster's children.
func freeze(int) ([]int, error) {
	return nil, errors.New("pgtest: pause needs Linux")
}

func thaw([]int) {}

func killTree(int) error { return errors.New("pgtest: crash needs Linux") }
