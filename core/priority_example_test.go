package core_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/bulkman-go/bulkman/core"
)

// waitFor yields until cond holds.
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

// A full bulkhead makes room for a critical call: the normal caller waiting in the queue
// is turned away with ErrFull, and the critical call takes its place.
func Example_priorities() {
	b, err := core.New(core.Config{Name: "payments", MaxConcurrentCalls: 1, MaxQueueSize: 1})
	if err != nil {
		panic(err)
	}
	release := make(chan struct{})
	running := func(context.Context) (string, error) { <-release; return "report", nil }
	go func() { _, _ = core.Execute(context.Background(), b, running) }() // holds the permit
	waitFor(func() bool { return b.Stats().ActiveTasks == 1 })

	batch := make(chan error)
	go func() {
		_, err := core.Execute(context.Background(), b, func(context.Context) (string, error) { return "batch", nil })
		batch <- err
	}()
	waitFor(func() bool { return b.Stats().QueuedTasks == 1 }) // the queue is full now

	checkout := make(chan string)
	go func() {
		ctx := core.WithPriority(context.Background(), core.PriorityCritical)
		r, _ := core.Execute(ctx, b, func(context.Context) (string, error) { return "checkout", nil })
		checkout <- r.Value
	}()
	fmt.Println("batch:", errors.Is(<-batch, core.ErrFull))
	close(release)
	fmt.Println("served:", <-checkout)
	fmt.Println("rejected:", b.Stats().RejectedExecutions)
	// Output:
	// batch: true
	// served: checkout
	// rejected: 1
}
