package core

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// sharer keeps one bulkhead's circuit in step with a CircuitStore, on a goroutine of its
// own: it writes local transitions (retrying with backoff while the store is down), adopts
// what peers write (through the store's Subscribe, and by polling every
// HealthCheckInterval in case a notification was missed), and never touches a call's path.
//
// Echo safety: a state adopted from the store is applied as remote and never written back,
// and adopting the record this process just wrote changes nothing (even with its times
// rounded by the store: see circuit.adopt), so two replicas never ping-pong.
type sharer struct {
	name     string
	circuit  *circuit
	store    CircuitStore
	timeout  time.Duration
	interval time.Duration
	logger   *slog.Logger

	mu      sync.Mutex
	pending *CircuitRecord // the latest local transition not yet saved
	remote  *CircuitRecord // the latest record a peer saved, not yet applied

	// life bounds every store call, with its own deadline each: close cancels it when
	// its ctx ends, so that a call to a store that does not answer is given up then.
	life        context.Context
	cancel      context.CancelFunc
	wake        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	stopOnce    sync.Once
	unsubscribe func() // the store's cancel for Subscribe
}

const (
	minRetry = 50 * time.Millisecond
	maxRetry = 5 * time.Second
)

func newSharer(b *Bulkhead, store CircuitStore, timeout time.Duration) *sharer {
	life, cancel := context.WithCancel(context.Background())
	return &sharer{
		life:     life,
		cancel:   cancel,
		name:     b.name,
		circuit:  b.circuit,
		store:    store,
		timeout:  timeout,
		interval: b.cfg.HealthCheckInterval,
		logger:   b.logger,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// start loads the stored state (so that a live OPEN rejects at once), subscribes, and
// starts the goroutine.
func (s *sharer) start() {
	s.unsubscribe = s.store.Subscribe(s.received)
	s.poll()
	go s.loop()
}

func (s *sharer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// local queues a transition this process made. It runs under the circuit's lock: it must
// not block. A transition adopted from the store (remote) is not written back, and it
// supersedes a local one not yet written: the store already holds the state the circuit
// is now in, and writing the older one would leave a state nobody is in.
func (s *sharer) local(to circuitStatus, until time.Time, remote bool) {
	if remote {
		s.mu.Lock()
		s.pending = nil
		s.mu.Unlock()
		return
	}
	rec := CircuitRecord{Name: s.name, Status: to.String(), UpdatedAt: time.Now()}
	if to == statusOpen {
		rec.OpenUntil = until
	}
	s.mu.Lock()
	s.pending = &rec
	s.mu.Unlock()
	s.poke()
}

// received is the store's Subscribe callback.
func (s *sharer) received(rec CircuitRecord) {
	if rec.Name != s.name {
		return
	}
	s.mu.Lock()
	s.remote = &rec
	s.mu.Unlock()
	s.poke()
}

func (s *sharer) loop() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	var retry *time.Timer
	var retryC <-chan time.Time
	backoff := minRetry
	for {
		select {
		case <-s.stop:
			if retry != nil {
				retry.Stop()
			}
			s.flush() // the last transition, unless close gives up on it
			return
		case <-tick:
			s.poll()
		case <-s.wake:
		case <-retryC:
			retryC = nil
		}
		s.mu.Lock()
		remote := s.remote
		s.remote = nil
		s.mu.Unlock()
		if remote != nil && s.adoptable(*remote) {
			s.circuit.adopt(*remote)
		}
		if retryC != nil {
			continue // a save is failing: wait for the retry timer
		}
		if ok := s.flush(); ok {
			backoff = minRetry
			continue
		}
		if retry == nil {
			retry = time.NewTimer(backoff)
		} else {
			retry.Reset(backoff)
		}
		retryC = retry.C
		backoff = min(backoff*2, maxRetry)
	}
}

// flush saves the pending transition, if any. It reports false when the store failed;
// the transition then stays pending (unless a newer one replaced it).
func (s *sharer) flush() bool {
	s.mu.Lock()
	rec := s.pending
	s.pending = nil
	s.mu.Unlock()
	if rec == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(s.life, s.timeout)
	stored, err := s.store.Save(ctx, *rec)
	cancel()
	if err != nil {
		if s.life.Err() != nil {
			s.logger.Warn("bulkman: circuit store write given up: Shutdown's context ended before the store answered",
				slog.String("bulkhead", s.name), slog.String("status", rec.Status), slog.Any("error", err))
			return false
		}
		s.logger.Warn("bulkman: circuit store write failed; the circuit goes on locally and the write will be retried",
			slog.String("bulkhead", s.name), slog.String("status", rec.Status), slog.Any("error", err))
		s.mu.Lock()
		if s.pending == nil {
			s.pending = rec
		}
		s.mu.Unlock()
		return false
	}
	if stored.Status != rec.Status || !sameInstant(stored.OpenUntil, rec.OpenUntil) {
		// A peer's live OPEN won the guarded write: adopt it (first opener wins).
		s.circuit.adopt(stored)
	}
	return true // written, maybe with its times rounded to the store's precision
}

// poll reads the stored state and adopts it: at start, and every HealthCheckInterval.
func (s *sharer) poll() {
	ctx, cancel := context.WithTimeout(s.life, s.timeout)
	rec, ok, err := s.store.Load(ctx, s.name)
	cancel()
	switch {
	case err != nil:
		s.logger.Warn("bulkman: circuit store read failed; the circuit goes on locally",
			slog.String("bulkhead", s.name), slog.Any("error", err))
	case ok && s.adoptable(rec):
		s.circuit.adopt(rec)
	}
}

// adoptable reports whether rec, read from the store or delivered by it, may override the
// circuit's state. A local transition not yet written (the store was failing, or the
// write has not run yet) is newer than a record written before it, such as what a poll
// reads or a store re-delivers after reconnecting: only a live OPEN, which the write
// would run into anyway, or a record written after the transition may override it.
func (s *sharer) adoptable(rec CircuitRecord) bool {
	s.mu.Lock()
	p := s.pending
	s.mu.Unlock()
	return p == nil || rec.live(time.Now()) || rec.UpdatedAt.After(p.UpdatedAt)
}

// close stops the goroutine after one last attempt to save a pending transition, and
// waits for it. If ctx ends first, the store call in progress (that last write, or a
// write or read the goroutine was making) is cancelled and close waits only for the
// store to return, which a CircuitStore does promptly once its ctx is done. Either way,
// when close returns the goroutine has ended and the subscription is cancelled. It
// returns ctx's error if ctx ended first, nil otherwise. It is idempotent.
func (s *sharer) close(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.unsubscribe()
		close(s.stop)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return ctx.Err()
	}
}
