//go:build !unix

package httpmw

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
