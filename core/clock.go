package core

import "time"

// clock tells time as an offset from a base instant. time.Now reads two clocks (wall and
// monotonic); time.Since reads only the monotonic one, which halves the cost of the two
// readings every call needs (on a VM's kvm-clock, a reading is 30 to 60ns). Inside a
// testing/synctest bubble time.Since follows the bubble's fake clock, like time.Now.
type clock struct{ base time.Time }

func newClock() clock { return clock{base: time.Now()} }

// now returns the time elapsed since the base.
func (c clock) now() time.Duration { return time.Since(c.base) }

// at converts an offset back to a time.Time.
func (c clock) at(d time.Duration) time.Time { return c.base.Add(d) }

// offset converts a time.Time (possibly from another process, without a monotonic
// reading) to an offset from the base.
func (c clock) offset(t time.Time) time.Duration { return t.Sub(c.base) }
