package bench

// bulkman's own rows. The module has no core, grpcmw or httpmw package yet, so these lists
// are empty; each benchmark appends them after the peers' rows.
//
// To add them: import the packages (go.mod already replaces github.com/bulkman-go/bulkman
// with ../; `go mod tidy` then adds the require), and return one row per way of calling,
// configured like the peers: MaxConcurrentCalls capacity, MaxQueueSize 0, Timeout
// callTimeout (or 0 for the rows without a timeout), CircuitBreakerEnabled with
// FailureThreshold failureThreshold, SuccessThreshold successThreshold and
// IsolationDuration openDelay. Suggested rows:
//
//	peers:  "bulkman-execute" (core.Execute, no breaker, no timeout),
//	        "bulkman-execute-cb" (breaker on), "bulkman-execute-timeout+cb" (both),
//	        "bulkman-wrap" (core.Wrap), "bulkman-acquire" (Bulkhead.Acquire + release)
//	gRPC:   "bulkman-grpcmw" (grpcmw.UnaryServerInterceptor(grpcmw.Always(b)))
//	HTTP:   "bulkman-httpmw" (httpmw.Handler(next, b))

// bulkmanPeerCases returns bulkman's rows for BenchmarkPeers.
func bulkmanPeerCases() []peerCase { return nil }

// bulkmanUnaryCases returns bulkman's rows for BenchmarkGRPCUnary.
func bulkmanUnaryCases() []unaryCase { return nil }

// bulkmanHandlerCases returns bulkman's rows for BenchmarkHTTPHandler.
func bulkmanHandlerCases() []handlerCase { return nil }
