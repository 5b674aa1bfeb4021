// Package bench compares the cost of bulkman's admission path with the peer libraries'
// (failsafe-go, hystrix-go, go-resiliency, gobreaker) and with a bare channel semaphore.
//
// It is a nested module so that the peers' dependencies never reach bulkman's go.mod. The
// package has no API: the benchmarks, and the sanity tests that keep them honest, are in its
// _test.go files. README.md gives the commands and the latest results.
package bench
