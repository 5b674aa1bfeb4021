// Package grpchealth keeps the per-service statuses of a gRPC health server
// (grpc.health.v1, as served by google.golang.org/grpc/health) in step with the bulkheads
// that guard each service: a service is NOT_SERVING while its dependency is isolated
// (its bulkhead's circuit is open), and SERVING otherwise.
//
// # Per service, never overall
//
// A Reporter touches only the services listed in its Config, and never the overall
// status, the empty service name "": a dependency shared by the whole fleet is isolated on
// every replica at once, and an overall NOT_SERVING would take them all out of rotation.
// Clients that health-check a service stop sending it calls that would only be refused,
// while the rest keeps flowing (the user guide's "Health checks" says more).
//
// # Wiring
//
// Run attaches a Reporter to a Manager in one call: for as long as it runs it subscribes to
// the Manager's events (core.Manager.Subscribe), so that a circuit that opens or closes
// changes the status at once, and it re-checks every Config.Interval as well:
//
//	hs := health.NewServer()
//	healthpb.RegisterHealthServer(grpcServer, hs)
//	r, err := grpchealth.New(hs, grpchealth.Config{
//		Services: map[string][]string{"shop.Orders": {"postgres", "payments-api"}},
//	})
//	if err != nil { ... }
//	go r.Run(ctx, m) // returns when ctx ends
//
// # The end of an isolation
//
// A service is NOT_SERVING exactly while its bulkheads are isolated as their Stats say:
// State is Isolated and Stats.OpenUntil, the end of the isolation, has not passed. At
// OpenUntil the circuit lets a half-open probe through (Stats reports the bulkhead
// degraded from then on), and the Reporter sets the service SERVING at that moment, on a
// timer, without waiting for a call: a service that is NOT_SERVING receives no calls from
// health-checking clients, so waiting for one could keep it out of rotation for good. If
// the probe fails the circuit opens again, and the service goes NOT_SERVING until the new
// OpenUntil. A circuit opened by a peer through a CircuitStore carries the peer's end of
// isolation.
package grpchealth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulkman-go/bulkman/core"
)

// StatusSetter is the part of a health server a Reporter drives; *health.Server from
// google.golang.org/grpc/health implements it.
type StatusSetter interface {
	// SetServingStatus sets the status of service. A Reporter calls it from Run's
	// goroutine only, for the services of its Config (never ""): when a status changes,
	// and for every service at each periodic re-check.
	SetServingStatus(service string, status healthpb.HealthCheckResponse_ServingStatus)
}

// Policy says which of a service's bulkheads must be isolated for it to be NOT_SERVING.
type Policy int

const (
	// AnyIsolated: NOT_SERVING while any of the service's bulkheads is isolated. It suits
	// a service that needs every one of its dependencies. The zero Policy.
	AnyIsolated Policy = iota
	// AllIsolated: NOT_SERVING only while all of them are. It suits a service that can
	// still answer with any one of its dependencies (fallbacks, replicas).
	AllIsolated
)

// DefaultInterval is the re-check period when Config.Interval is 0.
const DefaultInterval = time.Second

// Config says which services follow which bulkheads. It is plain data; New copies it.
type Config struct {
	// Services maps a gRPC service name as clients check it ("package.Service") to the
	// names of the bulkheads that guard its dependencies. Names of bulkheads the Manager
	// does not have (yet) count as not isolated. At least one service; no empty name
	// (the overall status belongs to the server, not to a dependency); at least one
	// bulkhead each.
	Services map[string][]string
	// Policy applies to every service; AnyIsolated by default. Run two Reporters on the
	// same health server for services that need different policies.
	Policy Policy
	// Interval is how often Run re-checks every bulkhead, in case an event was missed
	// (>= 0; 0 means DefaultInterval).
	Interval time.Duration
}

// Reporter sets the serving status of a health server's services from the state of their
// bulkheads. It is safe for concurrent use; Run may be called again after it returns.
// The zero Reporter is not usable: call New.
type Reporter struct {
	hs       StatusSetter
	services map[string][]string
	names    []string // service names, sorted, for a stable order of updates
	policy   Policy
	interval time.Duration

	wake    chan struct{} // a state changed: re-check now
	running atomic.Bool
	// sent is the status last set per service; only Run's goroutine uses it.
	sent map[string]healthpb.HealthCheckResponse_ServingStatus
	// watched is the set of bulkhead names the services follow; read-only after New.
	watched map[string]bool
}

// New returns a Reporter that drives hs as cfg says. It returns an error naming every
// problem with hs and cfg.
func New(hs StatusSetter, cfg Config) (*Reporter, error) {
	var errs []error
	if hs == nil {
		errs = append(errs, errors.New("grpchealth: nil StatusSetter"))
	}
	if len(cfg.Services) == 0 {
		errs = append(errs, errors.New("grpchealth: Config.Services is empty"))
	}
	r := &Reporter{
		hs:       hs,
		services: make(map[string][]string, len(cfg.Services)),
		policy:   cfg.Policy,
		interval: cfg.Interval,
		wake:     make(chan struct{}, 1),
		watched:  make(map[string]bool),
		sent:     make(map[string]healthpb.HealthCheckResponse_ServingStatus),
	}
	for _, svc := range slices.Sorted(maps.Keys(cfg.Services)) {
		bulkheads := cfg.Services[svc]
		switch {
		case svc == "":
			errs = append(errs, errors.New(`grpchealth: Config.Services: the overall status "" is not a service a bulkhead may turn off`))
			continue
		case len(bulkheads) == 0:
			errs = append(errs, fmt.Errorf("grpchealth: Config.Services[%q]: no bulkheads", svc))
			continue
		}
		r.services[svc] = slices.Clone(bulkheads)
		r.names = append(r.names, svc)
		for _, b := range bulkheads {
			r.watched[b] = true
		}
	}
	if cfg.Policy != AnyIsolated && cfg.Policy != AllIsolated {
		errs = append(errs, fmt.Errorf("grpchealth: Config.Policy: unknown policy %d", cfg.Policy))
	}
	switch {
	case cfg.Interval < 0:
		errs = append(errs, fmt.Errorf("grpchealth: Config.Interval: %v is negative", cfg.Interval))
	case cfg.Interval == 0:
		r.interval = DefaultInterval
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// observe wakes Run when a watched bulkhead changes state: it is what Run subscribes to
// the Manager. It is quick and never calls back into the bulkhead.
func (r *Reporter) observe(e core.Event) {
	if e.Kind != core.EventStateChanged || !r.watched[e.Bulkhead] {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run sets every service's status at once, then again whenever a watched bulkhead of m
// changes state (it subscribes to m's events until it returns), when an isolation ends,
// and every Interval, reading the bulkheads' Stats. It returns nil when ctx ends, leaving
// the statuses as they are (the server's Shutdown is the way to announce that the process
// is going away). It returns an error at once if m is nil or Run is already running.
func (r *Reporter) Run(ctx context.Context, m *core.Manager) error {
	if m == nil {
		return errors.New("grpchealth: Run: nil Manager")
	}
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("grpchealth: Run is already running")
	}
	defer r.running.Store(false)
	defer m.Subscribe(r.observe)()

	timer := time.NewTimer(r.interval)
	defer timer.Stop()
	tick := time.Now()
	for {
		now := time.Now()
		periodic := !now.Before(tick)
		if periodic {
			tick = now.Add(r.interval)
		}
		wait := tick.Sub(now)
		if end, ok := r.update(m, now, periodic); ok {
			wait = min(wait, end.Sub(now))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// update sets the status of every service whose status changed, or of every service when
// all is true. It returns when the first isolation it counts ends, if any.
func (r *Reporter) update(m *core.Manager, now time.Time, all bool) (next time.Time, ok bool) {
	isolated := make(map[string]bool, len(r.watched))
	for name := range r.watched {
		b, found := m.Get(name)
		if !found {
			continue
		}
		s := b.Stats()
		if s.State != core.Isolated {
			continue
		}
		if !s.OpenUntil.IsZero() && !now.Before(s.OpenUntil) {
			continue // the isolation is over: the next call is a half-open probe
		}
		isolated[name] = true
		if end := s.OpenUntil; !end.IsZero() && (!ok || end.Before(next)) {
			next, ok = end, true
		}
	}
	for _, svc := range r.names {
		status := r.status(svc, isolated)
		if last, sent := r.sent[svc]; all || !sent || status != last {
			r.hs.SetServingStatus(svc, status)
			r.sent[svc] = status
		}
	}
	return next, ok
}

// status applies the policy to the service's bulkheads.
func (r *Reporter) status(svc string, isolated map[string]bool) healthpb.HealthCheckResponse_ServingStatus {
	n := 0
	for _, b := range r.services[svc] {
		if isolated[b] {
			n++
		}
	}
	if (r.policy == AnyIsolated && n > 0) || (r.policy == AllIsolated && n == len(r.services[svc])) {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}
