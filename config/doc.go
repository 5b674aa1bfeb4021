// Package config declares bulkheads and the gRPC methods and HTTP routes they guard in
// one file, reviewed like code, and changes them while the program serves.
//
//	m := core.NewManager()
//	live, err := config.Open(m, "bulkheads.yaml")
//	if err != nil {
//		log.Fatal(err) // bulkheads.yaml:12:27: bulkheads[1].max_concurrent_calls: ...
//	}
//	defer live.Close()
//	if err := live.Watch(0); err != nil { // optional: reload when the file changes
//		log.Fatal(err)
//	}
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(grpcmw.UnaryServerInterceptor(live.GRPC())))
//	handler := httpmw.Middleware(live.HTTP())(mux)
//
// The file is YAML (JSON, YAML's subset, works as it is):
//
//	version: 1
//	defaults:
//	  timeout_seconds: 2
//	bulkheads:
//	  - name: orders
//	    max_concurrent_calls: 20
//	  - name: reports
//	    max_concurrent_calls: 2
//	    circuit_breaker_enabled: true
//	grpc:
//	  "/shop.v1.Orders/*": orders
//	  "/shop.v1.Reports/*": reports
//	http:
//	  "POST /orders": orders
//	  "GET /reports/{id}": reports
//	  "GET /healthz": null # unguarded
//
// docs/configuration.md describes every key, the error format and what a reload does.
//
// Parse and Load read a file into a validated File, reporting every problem at once as
// "file:line:col: key: message" (see Error). New and Open apply a File to a core.Manager
// and return a Live, whose Selectors (GRPC, HTTP) serve its route tables; Live.Apply,
// Live.Reload and Live.Watch change it while it serves, keeping the bulkheads' statistics
// and circuit state.
package config
