// Package cputime reads the CPU time the process, or the calling thread, has used, for the
// module's benchmarks and the overload benchmark: CPU per operation, which another tenant
// of a shared machine does not inflate as it does wall time. Alternate runs variants of a
// benchmark in one loop and times each in the thread's CPU time.
package cputime
