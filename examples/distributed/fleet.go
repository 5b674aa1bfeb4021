package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkman-go/bulkman/core"
	"github.com/bulkman-go/bulkman/internal/pgtest"
	"github.com/bulkman-go/bulkman/pgstore"
)

// The fleet mode measures shared circuits the way a fleet uses them: ten replicas in one
// process, each with its own pool, store and Manager over one PostgreSQL database, each
// sending its own traffic to a simulated dependency. It prints a table of the targets and
// returns an error when one is missed.

// fleetParams sizes a run: short for CI (the default run), full with -fleet.
type fleetParams struct {
	replicas    int
	quorum      int
	brokenRuns  int           // trials of one broken replica, quorum
	firstRuns   int           // the same with a quorum of 1, for comparison
	outageRuns  int           // trials of a real outage, quorum
	aloneRuns   int           // the same without shared state, for comparison
	pause       time.Duration // how long PostgreSQL stays stopped (SIGSTOP)
	isolation   time.Duration
	busy, light time.Duration // the interval between calls of busy and of light replicas
	busyCount   int           // replicas 0..busyCount-1 are busy, the others light
}

func fleetParamsFor(full bool) fleetParams {
	p := fleetParams{
		replicas: 10, quorum: 3,
		brokenRuns: 10, firstRuns: 3, outageRuns: 10, aloneRuns: 5,
		pause:     time.Second,
		isolation: 300 * time.Millisecond,
		busy:      2 * time.Millisecond, light: 50 * time.Millisecond, busyCount: 4,
	}
	if full {
		p.brokenRuns, p.firstRuns, p.outageRuns, p.aloneRuns = 100, 10, 50, 20
		p.pause = 10 * time.Second
	}
	return p
}

// Targets.
const (
	refuseTarget = 200 * time.Millisecond // >= 90% of replicas refuse within this, p99
	delayLimit   = 100 * time.Millisecond // a call slower than this was delayed
	failThresh   = 5                      // consecutive failures that open a replica's circuit
)

var errDependency = errors.New("dependency: 503")

// member is one replica: its pool, store, Manager and bulkhead, its traffic, and what it saw.
type member struct {
	id       int
	interval time.Duration
	pool     *pgxpool.Pool
	store    *pgstore.Store // nil without shared state
	counted  *countingStore // nil without shared state
	m        *core.Manager
	b        *core.Bulkhead
	broken   atomic.Bool // its path to the dependency is broken
	// mayRefuse: it was broken during the current phase, so its own breaker may refuse
	// its calls (set before broken, cleared when the phase ends).
	mayRefuse atomic.Bool
	opened    atomic.Int64 // unix nanoseconds of its last transition to isolated
	opens     atomic.Int64 // transitions to isolated, its own or adopted
}

// phase counts the calls of one stretch of the run.
type phase struct {
	calls, failed, delayed, refused atomic.Int64
	maxLatency                      atomic.Int64
}

// fleet is the replicas, their traffic, and the dependency they share.
type fleet struct {
	p       fleetParams
	members []*member
	outage  atomic.Bool // the dependency fails every call
	phase   atomic.Pointer[phase]
	stop    chan struct{}
	wg      sync.WaitGroup
	calls   atomic.Int64 // every call of the run
}

// countingStore counts a store's calls, and those made from inside core.Execute: on a
// request's path.
type countingStore struct {
	core.CircuitStore
	calls, onPath atomic.Int64
}

func (c *countingStore) count() {
	c.calls.Add(1)
	buf := make([]byte, 64<<10)
	if bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("bulkman/core.Execute[")) {
		c.onPath.Add(1)
	}
}

func (c *countingStore) Load(ctx context.Context, name string) (core.CircuitRecord, bool, error) {
	c.count()
	return c.CircuitStore.Load(ctx, name)
}

func (c *countingStore) Save(ctx context.Context, rec core.CircuitRecord) (core.CircuitRecord, error) {
	c.count()
	return c.CircuitStore.Save(ctx, rec)
}

// newFleet starts p.replicas replicas; with a namespace they share their circuit through
// PostgreSQL with the given quorum, without one each has its own.
func newFleet(ctx context.Context, url, namespace string, quorum int, p fleetParams) (*fleet, error) {
	f := &fleet{p: p, stop: make(chan struct{})}
	f.phase.Store(new(phase))
	for i := range p.replicas {
		mb := &member{id: i, interval: p.light}
		if i < p.busyCount {
			mb.interval = p.busy
		}
		opts := []core.Option{core.WithEventHook(func(e core.Event) {
			if e.Kind == core.EventStateChanged && e.To == core.Isolated {
				mb.opened.Store(time.Now().UnixNano())
				mb.opens.Add(1)
			}
		})}
		if namespace != "" {
			cfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				return nil, err
			}
			cfg.MaxConns = 4
			if mb.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
				f.close()
				return nil, err
			}
			mb.store, err = pgstore.New(ctx, mb.pool, pgstore.WithNamespace(namespace), pgstore.WithQuorum(quorum),
				pgstore.WithReplica(fmt.Sprintf("replica-%d", i)))
			if err != nil {
				mb.pool.Close()
				f.close()
				return nil, err
			}
			mb.counted = &countingStore{CircuitStore: mb.store}
			opts = append(opts, core.WithCircuitStore(mb.counted))
		}
		mb.m = core.NewManager(opts...)
		cfg := core.DefaultConfig("payments")
		cfg.MaxConcurrentCalls, cfg.MaxQueueSize = 16, 0
		cfg.CircuitBreakerEnabled = true
		cfg.FailureThreshold, cfg.SuccessThreshold = failThresh, 1
		cfg.IsolationDuration = p.isolation
		cfg.HealthCheckInterval = time.Second
		var err error
		if mb.b, err = mb.m.Create(cfg); err != nil {
			f.members = append(f.members, mb)
			f.close()
			return nil, err
		}
		f.members = append(f.members, mb)
	}
	for _, mb := range f.members {
		f.wg.Go(func() { f.traffic(mb) })
	}
	return f, nil
}

// traffic sends mb's calls until the fleet stops.
func (f *fleet) traffic(mb *member) {
	t := time.NewTicker(mb.interval)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		res, err := core.Execute(ctx, mb.b, func(context.Context) (struct{}, error) {
			if mb.broken.Load() || f.outage.Load() {
				return struct{}{}, errDependency
			}
			return struct{}{}, nil
		})
		took := time.Since(start)
		broken := mb.mayRefuse.Load() || mb.broken.Load() || f.outage.Load()
		ph := f.phase.Load()
		f.calls.Add(1)
		ph.calls.Add(1)
		if took > delayLimit {
			ph.delayed.Add(1)
		}
		for {
			cur := ph.maxLatency.Load()
			if int64(took) <= cur || ph.maxLatency.CompareAndSwap(cur, int64(took)) {
				break
			}
		}
		switch {
		case errors.Is(err, core.ErrCircuitOpen):
			ph.refused.Add(1)
			if !broken {
				ph.failed.Add(1) // refused although its own path works: some other replica's verdict
			}
		case err != nil:
			ph.failed.Add(1)
		case !res.Success && !broken:
			ph.failed.Add(1)
		}
	}
}

// close stops the traffic and shuts everything down.
func (f *fleet) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, mb := range f.members {
		if mb.m != nil {
			_ = mb.m.Shutdown(ctx) // before the store: its goroutines use it
		}
		if mb.store != nil {
			_ = mb.store.Close()
		}
		if mb.pool != nil {
			mb.pool.Close()
		}
	}
}

// waitHealthy waits until every replica's circuit is closed.
func (f *fleet) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		healthy := 0
		for _, mb := range f.members {
			if mb.b.State() == core.Healthy {
				healthy++
			}
		}
		if healthy == len(f.members) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d replicas healthy after %v", healthy, len(f.members), within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// brokenTrial breaks replica i's own path to the dependency until its circuit has
// opened and had time to open again after a failed probe, and reports whether any other
// replica's circuit opened meanwhile (a fleet-wide open).
func (f *fleet) brokenTrial(i int) (bool, error) {
	if err := f.waitHealthy(5 * time.Second); err != nil {
		return false, err
	}
	before := make([]int64, len(f.members))
	for j, mb := range f.members {
		before[j] = mb.opens.Load()
	}
	target := f.members[i]
	target.mayRefuse.Store(true)
	defer target.mayRefuse.Store(false)
	target.broken.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for target.b.State() != core.Isolated {
		if time.Now().After(deadline) {
			target.broken.Store(false)
			return false, fmt.Errorf("replica %d did not open within 5s", i)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(f.p.isolation + 100*time.Millisecond) // notifications, and a re-open after a failed probe
	target.broken.Store(false)
	for j, mb := range f.members {
		if j != i && mb.opens.Load() != before[j] {
			return true, nil
		}
	}
	return false, nil
}

// outageTrial makes the dependency fail every call and returns how long until 90% of
// the replicas refused (their circuits open), or an error after 5s.
func (f *fleet) outageTrial() (time.Duration, error) {
	if err := f.waitHealthy(5 * time.Second); err != nil {
		return 0, err
	}
	need := int(math.Ceil(0.9 * float64(len(f.members))))
	start := time.Now()
	f.outage.Store(true)
	defer f.outage.Store(false)
	for {
		var took []time.Duration
		for _, mb := range f.members {
			if at := mb.opened.Load(); at > start.UnixNano() {
				took = append(took, time.Duration(at-start.UnixNano()))
			}
		}
		if len(took) >= need {
			slices.Sort(took)
			return took[need-1], nil
		}
		if time.Since(start) > 5*time.Second {
			return 0, fmt.Errorf("only %d of %d replicas refused within 5s", len(took), len(f.members))
		}
		time.Sleep(time.Millisecond)
	}
}

// storeCalls sums the fleet's store calls: all, and those on a request's path.
func (f *fleet) storeCalls() (all, onPath int64) {
	for _, mb := range f.members {
		if mb.counted != nil {
			all += mb.counted.calls.Load()
			onPath += mb.counted.onPath.Load()
		}
	}
	return all, onPath
}

// row is one line of the table.
type row struct {
	what, result, target string
	ok                   *bool // nil: for comparison, no target
}

func yes(b bool) *bool { return &b }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// runFleet runs every measurement and prints the table; it returns an error when a
// target is missed.
func runFleet(ctx context.Context, srv *pgtest.Server, full bool) error {
	began := time.Now()
	defer func() { fmt.Printf("fleet run: %v\n", time.Since(began).Round(time.Second)) }()
	p := fleetParamsFor(full)
	mode := "short (the full run: go run ./examples/distributed -fleet)"
	if full {
		mode = "full"
	}
	fmt.Printf("\nfleet: %d replicas in one process, each with its own pool, store and Manager; quorum %d; %s\n",
		p.replicas, p.quorum, mode)
	fmt.Printf("  replicas 0-%d call every %v, the others every %v; %d failures in a row open a circuit for %v\n",
		p.busyCount-1, p.busy, p.light, failThresh, p.isolation)
	var rows []row
	base := fmt.Sprintf("fleet-%d", time.Now().UnixNano())

	// The quorum fleet: broken replicas, outages, the database's faults.
	f, err := newFleet(ctx, srv.URL(), base+"-q", p.quorum, p)
	if err != nil {
		return err
	}
	defer f.close()
	fleetOpens := 0
	for i := range p.brokenRuns {
		opened, err := f.brokenTrial(i % p.replicas)
		if err != nil {
			return fmt.Errorf("broken replica, trial %d: %w", i, err)
		}
		if opened {
			fleetOpens++
		}
	}
	rows = append(rows, row{
		fmt.Sprintf("one broken replica, quorum %d: fleet-wide opens", p.quorum),
		fmt.Sprintf("%d of %d trials", fleetOpens, p.brokenRuns), "0", yes(fleetOpens == 0)})

	var t90 []time.Duration
	for i := range p.outageRuns {
		d, err := f.outageTrial()
		if err != nil {
			return fmt.Errorf("outage, trial %d: %w", i, err)
		}
		t90 = append(t90, d)
	}
	p99 := percentile(t90, 0.99)
	rows = append(rows, row{
		fmt.Sprintf("real outage, quorum %d: 90%% of replicas refuse within (p99 of %d)", p.quorum, p.outageRuns),
		fmt.Sprintf("%v (p50 %v)", p99.Round(100*time.Microsecond), percentile(t90, 0.5).Round(100*time.Microsecond)),
		"<= " + refuseTarget.String(), yes(p99 <= refuseTarget)})

	dbRow, err := f.databaseFaults(ctx, srv)
	if err != nil {
		return err
	}
	all, onPath := f.storeCalls()
	calls := f.calls.Load()
	f.close()

	// The comparisons: the first-opener rule, and no shared state at all.
	first, err := newFleet(ctx, srv.URL(), base+"-first", 1, p)
	if err != nil {
		return err
	}
	firstOpens := 0
	for i := range p.firstRuns {
		opened, err := first.brokenTrial(i % p.replicas)
		if err != nil {
			first.close()
			return fmt.Errorf("broken replica, quorum 1, trial %d: %w", i, err)
		}
		if opened {
			firstOpens++
		}
	}
	var first90 []time.Duration
	for i := range p.aloneRuns {
		d, err := first.outageTrial()
		if err != nil {
			first.close()
			return fmt.Errorf("outage, quorum 1, trial %d: %w", i, err)
		}
		first90 = append(first90, d)
	}
	first.close()
	brokenRow := row{"  the same, quorum 1 (the first opener decides)",
		fmt.Sprintf("%d of %d trials", firstOpens, p.firstRuns), "", nil}
	rows = slices.Insert(rows, 1, brokenRow)
	rows = append(rows, row{fmt.Sprintf("  the same, quorum 1 (p99 of %d)", p.aloneRuns),
		fmt.Sprintf("%v (p50 %v)", percentile(first90, 0.99).Round(100*time.Microsecond), percentile(first90, 0.5).Round(100*time.Microsecond)),
		"", nil})

	alone, err := newFleet(ctx, srv.URL(), "", 0, p)
	if err != nil {
		return err
	}
	var alone90 []time.Duration
	for i := range p.aloneRuns {
		d, err := alone.outageTrial()
		if err != nil {
			alone.close()
			return fmt.Errorf("outage without shared state, trial %d: %w", i, err)
		}
		alone90 = append(alone90, d)
	}
	alone.close()
	rows = append(rows, row{fmt.Sprintf("  the same without shared state (p99 of %d)", p.aloneRuns),
		fmt.Sprintf("%v (p50 %v)", percentile(alone90, 0.99).Round(100*time.Microsecond), percentile(alone90, 0.5).Round(100*time.Microsecond)),
		"", nil})

	rows = append(rows, row{"store calls on a request's path",
		fmt.Sprintf("%d (of %d calls; %d store calls off the path)", onPath, calls, all-onPath), "0", yes(onPath == 0)})
	rows = append(rows, dbRow)
	rows = append(rows, failureRateRow())

	return printTable(rows)
}

// databaseFaults kills PostgreSQL (-9) and restarts it, then stops it (SIGSTOP) for
// p.pause, while every replica sends calls and two replicas' circuits open and close (so
// that there are transitions to write), and counts the calls that failed or were delayed.
func (f *fleet) databaseFaults(ctx context.Context, srv *pgtest.Server) (row, error) {
	what := fmt.Sprintf("PostgreSQL kill -9 + restart, then SIGSTOP %v: calls failed or delayed > %v", f.p.pause, delayLimit)
	if srv.External() || runtime.GOOS != "linux" {
		return row{what, "not run (needs a local server on Linux)", "0", nil}, nil
	}
	if err := f.waitHealthy(5 * time.Second); err != nil {
		return row{}, err
	}
	ph := new(phase)
	f.phase.Store(ph)
	defer func() {
		f.phase.Store(new(phase))
		for _, mb := range f.members {
			mb.mayRefuse.Store(false)
		}
	}()

	if err := srv.Crash(); err != nil {
		return row{}, err
	}
	f.members[0].mayRefuse.Store(true)
	f.members[0].broken.Store(true) // a transition to write while the database is gone
	time.Sleep(time.Second)
	if err := srv.Restart(ctx); err != nil {
		return row{}, err
	}
	time.Sleep(time.Second)
	if err := srv.Pause(); err != nil {
		return row{}, err
	}
	f.members[1].mayRefuse.Store(true)
	f.members[1].broken.Store(true) // one to write while it hangs
	time.Sleep(f.p.pause)
	if err := srv.Resume(); err != nil {
		return row{}, err
	}
	f.members[0].broken.Store(false)
	f.members[1].broken.Store(false)
	if err := f.waitHealthy(10 * time.Second); err != nil {
		return row{}, err
	}
	// The stores work again: a write reaches the database.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := f.members[2].store.Save(cctx, core.CircuitRecord{Name: "fleet-check", Status: core.StatusClosed})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return row{}, fmt.Errorf("the database did not answer within 30s of the resume: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	bad := ph.failed.Load() + ph.delayed.Load()
	result := fmt.Sprintf("%d failed, %d delayed of %d calls (slowest %v)", ph.failed.Load(), ph.delayed.Load(),
		ph.calls.Load(), time.Duration(ph.maxLatency.Load()).Round(time.Microsecond))
	return row{what, result, "0", yes(bad == 0)}, nil
}

// failureRateRow runs a dependency that fails every other call through the consecutive
// rule and the failure-rate rule.
func failureRateRow() row {
	openedAt := func(mutate func(*core.Config)) int {
		cfg := core.DefaultConfig("half-failing")
		cfg.CircuitBreakerEnabled = true
		cfg.FailureThreshold = failThresh
		cfg.IsolationDuration = time.Hour
		if mutate != nil {
			mutate(&cfg)
		}
		b, err := core.New(cfg)
		if err != nil {
			return -1
		}
		defer b.Shutdown(context.Background())
		for i := range 2000 {
			_, _ = core.Execute(context.Background(), b, func(context.Context) (int, error) {
				if i%2 == 0 {
					return 0, errDependency
				}
				return 1, nil
			})
			if b.State() == core.Isolated {
				return i + 1
			}
		}
		return 0
	}
	consecutive := openedAt(nil)
	rate := openedAt(func(c *core.Config) {
		c.FailureRateThreshold, c.FailureRateWindow, c.MinimumCalls = 50, 10*time.Second, 20
	})
	show := func(n int) string {
		if n == 0 {
			return "never"
		}
		return fmt.Sprintf("at call %d", n)
	}
	return row{
		"every other call fails: 50% rule (of >= 20 in 10s) / 5 in a row",
		fmt.Sprintf("opens %s / %s (2000 calls)", show(rate), show(consecutive)),
		"opens / never", yes(rate > 0 && consecutive == 0)}
}

// printTable prints the rows and returns an error naming the missed targets.
func printTable(rows []row) error {
	w1, w2, w3 := len("measure"), len("result"), len("target")
	for _, r := range rows {
		w1, w2, w3 = max(w1, len(r.what)), max(w2, len(r.result)), max(w3, len(r.target))
	}
	fmt.Printf("\n%-*s  %-*s  %-*s  %s\n", w1, "measure", w2, "result", w3, "target", "verdict")
	fmt.Println(strings.Repeat("-", w1+w2+w3+13))
	var missed []string
	for _, r := range rows {
		verdict := ""
		switch {
		case r.ok == nil:
		case *r.ok:
			verdict = "met"
		default:
			verdict = "MISSED"
			missed = append(missed, r.what)
		}
		fmt.Printf("%-*s  %-*s  %-*s  %s\n", w1, r.what, w2, r.result, w3, r.target, verdict)
	}
	if len(missed) > 0 {
		return fmt.Errorf("targets missed: %s", strings.Join(missed, "; "))
	}
	fmt.Println("\nevery target met")
	return nil
}
