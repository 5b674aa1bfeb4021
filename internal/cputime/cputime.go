// Package cputime reads the CPU time the process has used, for the module's benchmarks
// and the overload benchmark: CPU per operation, which another tenant of a shared machine
// does not inflate as it does wall time.
package cputime
