package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulkman-go/bulkman/core"
)

// class is a call's priority and tenant.
type class struct {
	p      core.Priority
	tenant string
}

func (c class) ctx(parent context.Context) context.Context {
	ctx := parent
	if c.p != core.PriorityNormal {
		ctx = core.WithPriority(ctx, c.p)
	}
	if c.tenant != "" {
		ctx = core.WithTenant(ctx, c.tenant)
	}
	return ctx
}

var (
	low      = class{p: core.PriorityLow}
	normal   = class{}
	high     = class{p: core.PriorityHigh}
	critical = class{p: core.PriorityCritical}
)

func tenant(name string) class { return class{tenant: name} }

// TestPriorityOrder checks the order in which queued callers start, through Execute and
// through Acquire: higher priorities first, tenants in turn, each tenant's calls in order.
func TestPriorityOrder(t *testing.T) {
	tests := []struct {
		name   string
		queued []class
		want   []int
	}{
		{"no priorities: FIFO", []class{normal, normal, normal, normal}, []int{0, 1, 2, 3}},
		{"priorities", []class{low, normal, critical, high, normal, critical}, []int{2, 5, 3, 1, 4, 0}},
		{"tenants in turn", []class{tenant("a"), tenant("a"), tenant("a"), tenant("b"), normal, tenant("b")}, []int{0, 3, 4, 1, 5, 2}},
		{"out of range: clamped", []class{{p: -100}, {p: 100}, high, normal}, []int{1, 2, 3, 0}},
	}
	for _, tt := range tests {
		for _, via := range []string{"Execute", "Acquire"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					// A queue four times as long as needed: no priority's share of it is reached.
					b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 4*len(tt.queued) })
					g := newGate()
					holder := goExecute(context.Background(), b, hold(g, 0, nil))
					synctest.Wait()

					var mu sync.Mutex
					var order []int
					var wg sync.WaitGroup
					for i, c := range tt.queued {
						ctx := c.ctx(context.Background())
						wg.Go(func() {
							if via == "Acquire" {
								p, err := b.Acquire(ctx)
								if err != nil {
									panic(err)
								}
								mu.Lock()
								order = append(order, i)
								mu.Unlock()
								_ = p.Release(core.Success)
								return
							}
							_, err := core.Execute(ctx, b, func(context.Context) (int, error) {
								mu.Lock()
								order = append(order, i)
								mu.Unlock()
								return i, nil
							})
							if err != nil {
								panic(err)
							}
						})
						synctest.Wait()
					}
					require.Equal(t, len(tt.queued), b.Stats().QueuedTasks)
					close(g)
					_, err := holder.wait()
					require.NoError(t, err)
					wg.Wait()
					assert.Equal(t, tt.want, order)
					assertIdle(t, b.Stats())
				})
			})
		}
	}
}

// TestPriorityDisplacement fills a bulkhead (one permit, a queue of len(queued)) and
// sends one more call: it takes the place of the waiter the rules pick, which gets
// ErrFull and counts as rejected, with an event of its priority; or it is refused.
func TestPriorityDisplacement(t *testing.T) {
	tests := []struct {
		name      string
		queued    []class
		arrival   class
		displaced int // index in queued; -1: the arrival is refused
	}{
		{"no priorities: refused", []class{normal, normal}, normal, -1},
		{"a lower priority: its newest", []class{low, low, normal}, normal, 1},
		{"the lowest first", []class{low, normal, high}, critical, 0},
		{"no lower priority: refused", []class{high, critical}, normal, -1},
		{"a tenant with fewer: the newest of the one with most", []class{tenant("a"), tenant("b"), tenant("b"), tenant("a"), tenant("b")}, tenant("c"), 4},
		{"as many: refused", []class{tenant("a"), tenant("b")}, tenant("a"), -1},
		{"calls without a tenant are one tenant", []class{normal, normal, tenant("b")}, tenant("b"), 1},
		{"out of range: clamped to critical", []class{high, high}, class{p: 100}, 1},
		{"out of range: clamped to low", []class{{p: -100}, normal}, normal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var events []core.Event
				b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, len(tt.queued) },
					core.WithEventHook(func(e core.Event) {
						if e.Kind == core.EventRejected {
							mu.Lock()
							events = append(events, e)
							mu.Unlock()
						}
					}))
				g := newGate()
				holder := goExecute(context.Background(), b, hold(g, 0, nil))
				synctest.Wait()
				calls := make([]*call, len(tt.queued))
				for i, c := range tt.queued {
					calls[i] = goExecute(c.ctx(context.Background()), b, succeed(i))
					synctest.Wait()
				}
				s := b.Stats()
				require.Equal(t, len(tt.queued), s.QueuedTasks, "the queue is full")
				require.Zero(t, s.RejectedExecutions)
				arrival := goExecute(tt.arrival.ctx(context.Background()), b, succeed(-1))
				synctest.Wait()

				s = b.Stats()
				assertInvariants(t, s)
				assert.EqualValues(t, 1, s.RejectedExecutions, "the displaced waiter or the arrival")
				assert.Equal(t, len(tt.queued), s.QueuedTasks, "the queue stays full")
				require.Len(t, events, 1)
				assert.ErrorIs(t, events[0].Err, core.ErrFull)
				if tt.displaced < 0 {
					require.True(t, arrival.returned())
					_, err := arrival.wait()
					assertRefusal(t, err, core.ErrFull, "test")
					assert.Equal(t, min(max(tt.arrival.p, core.PriorityLow), core.PriorityCritical), events[0].Priority)
				} else {
					d := calls[tt.displaced]
					require.True(t, d.returned(), "the displaced waiter is told at once")
					_, err := d.wait()
					assertRefusal(t, err, core.ErrFull, "test")
					assert.Equal(t, min(max(tt.queued[tt.displaced].p, core.PriorityLow), core.PriorityCritical), events[0].Priority)
					assert.False(t, arrival.returned(), "the arrival waits in its place")
				}
				for i, c := range calls {
					if i != tt.displaced {
						assert.False(t, c.returned(), "waiter %d still waits", i)
					}
				}

				close(g)
				for _, c := range append(calls, holder, arrival) {
					_, _ = c.wait()
				}
				s = b.Stats()
				assertIdle(t, s)
				assert.EqualValues(t, len(tt.queued)+1, s.SuccessfulExecutions, "everyone else ran")
				assert.Equal(t, s.SuccessfulExecutions, s.TotalExecutions)
			})
		})
	}
}

// TestPriorityShedding checks that a call that has to wait is refused at once when the
// queue is past its priority's share and a higher priority is queued.
func TestPriorityShedding(t *testing.T) {
	tests := []struct {
		name    string
		queued  []class // in a queue of 8 places behind one held permit
		arrival class
		shed    bool
	}{
		{"no priorities: the whole queue", []class{normal, normal, normal, normal, normal, normal}, normal, false},
		{"low past a quarter", []class{critical, normal}, low, true},
		{"low under a quarter", []class{critical}, low, false},
		{"normal past half", []class{high, normal, normal, normal}, normal, true},
		{"normal under half", []class{high, normal, normal}, normal, false},
		{"normal past half, nothing higher", []class{low, low, low, normal, normal}, normal, false},
		{"high past three quarters", []class{critical, high, high, high, high, high}, high, true},
		{"critical: never", []class{critical, critical, critical, critical, critical, critical, critical}, critical, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize = 1, 8 })
				g := newGate()
				calls := []*call{goExecute(context.Background(), b, hold(g, 0, nil))}
				synctest.Wait()
				for _, c := range tt.queued {
					calls = append(calls, goExecute(c.ctx(context.Background()), b, succeed(0)))
					synctest.Wait()
				}
				require.Equal(t, len(tt.queued), b.Stats().QueuedTasks)
				arrival := goExecute(tt.arrival.ctx(context.Background()), b, succeed(0))
				synctest.Wait()
				assert.Equal(t, tt.shed, arrival.returned())
				if tt.shed {
					_, err := arrival.wait()
					assertRefusal(t, err, core.ErrFull, "test")
					assert.EqualValues(t, 1, b.Stats().RejectedExecutions)
				}
				close(g)
				for _, c := range append(calls, arrival) {
					_, _ = c.wait()
				}
				assertIdle(t, b.Stats())
			})
		})
	}
}

// TestPriorityDisplacedWhileTimed checks a displaced waiter of a bulkhead with a Timeout:
// it leaves the deadline list, and nothing fires for it later.
func TestPriorityDisplacedWhileTimed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) { c.MaxConcurrentCalls, c.MaxQueueSize, c.Timeout = 1, 1, time.Second })
		g := newGate()
		holder := goExecute(context.Background(), b, hold(g, 0, nil))
		synctest.Wait()
		waiter := goExecute(context.Background(), b, succeed(1))
		synctest.Wait()
		crit := goExecute(critical.ctx(context.Background()), b, succeed(2))
		synctest.Wait()
		_, err := waiter.wait()
		assertRefusal(t, err, core.ErrFull, "test")
		close(g)
		_, err = holder.wait()
		require.NoError(t, err)
		res, err := crit.wait()
		require.NoError(t, err)
		assert.Equal(t, 2, res.Value)
		time.Sleep(2 * time.Second)
		s := b.Stats()
		assertIdle(t, s)
		assert.EqualValues(t, 1, s.RejectedExecutions)
		assert.Zero(t, s.TimedOutExecutions)
	})
}

// TestAdaptiveTenantPlaces checks the places an adaptive bulkhead adds beyond its queue
// bound for tenants with a short line: up to three per tenant waiting, never for a
// tenant with three waiters, never for calls without tenants, never past MaxQueueSize.
func TestAdaptiveTenantPlaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, func(c *core.Config) {
			// Limit 2; the bound is ceil(2 x 0.5) = 1 place.
			c.MaxConcurrentCalls, c.MaxQueueSize = 2, 7
			c.Adaptive = &core.AdaptiveConfig{MinConcurrentCalls: 1, InitialConcurrentCalls: 2}
		})
		release := make(chan struct{})
		var wg sync.WaitGroup
		call := func(tenant string) <-chan error {
			ch := make(chan error, 1)
			ctx := context.Background()
			if tenant != "-" {
				ctx = core.WithTenant(ctx, tenant)
			}
			wg.Go(func() {
				_, err := core.Execute(ctx, b, func(context.Context) (int, error) { <-release; return 0, nil })
				ch <- err
			})
			synctest.Wait()
			return ch
		}
		refused := func(ch <-chan error) bool {
			select {
			case err := <-ch:
				return errors.Is(err, core.ErrFull)
			default:
				return false
			}
		}
		call("a")
		call("a") // both permits held
		var waiting []<-chan error
		steps := []struct {
			tenant  string
			refused bool
		}{
			{"-", false}, // the bound's one place, tenant ""
			{"-", true},  // "" alone: the bound holds
			{"a", false}, // two tenants wait: up to 6 places
			{"a", false}, //
			{"a", false}, // a has three
			{"a", true},  // a's fourth: no place, and a has the most: refused
			{"b", false}, // three tenants: up to 9 places, but MaxQueueSize is 7
			{"b", false}, // 6 waiting
			{"c", false}, // 7 waiting: MaxQueueSize
			{"d", false}, // full: d displaces a's newest
		}
		for i, s := range steps {
			ch := call(s.tenant)
			assert.Equal(t, s.refused, refused(ch), "step %d (%s)", i, s.tenant)
			waiting = append(waiting, ch)
		}
		assert.True(t, refused(waiting[4]), "d took the place of a's newest")
		assert.Equal(t, 7, b.Stats().QueuedTasks)
		close(release)
		wg.Wait()
		assertIdle(t, b.Stats())
	})
}
