package pgtest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPauseFreezesTheServer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Pause needs Linux")
	}
	s := local(t)
	ctx := context.Background()
	open, err := pgx.Connect(ctx, s.URL())
	require.NoError(t, err)
	defer open.Close(ctx)

	require.NoError(t, s.Pause())
	require.NoError(t, s.Pause(), "pausing again does nothing")
	for _, tc := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"a query on an open connection", func(ctx context.Context) error { _, err := open.Exec(ctx, "SELECT 1"); return err }},
		{"a new connection", func(ctx context.Context) error { _, err := queryInt(ctx, s.URL(), "SELECT 1"); return err }},
	} {
		qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		err := tc.run(qctx)
		cancel()
		assert.Error(t, err, "%s: no answer while paused", tc.name)
		assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "%s: it hung until the deadline, not refused", tc.name)
	}

	require.NoError(t, s.Resume())
	require.NoError(t, s.Resume(), "resuming again does nothing")
	n, err := queryInt(ctx, s.URL(), "SELECT 7")
	require.NoError(t, err)
	assert.Equal(t, 7, n, "answers again once resumed")

	// Kill and Restart work on a paused server.
	require.NoError(t, s.Pause())
	start := time.Now()
	require.NoError(t, s.Restart(ctx))
	assert.Less(t, time.Since(start), killGrace, "no wait for a SIGKILL: Kill resumes first")
	n, err = queryInt(ctx, s.URL(), "SELECT 8")
	require.NoError(t, err)
	assert.Equal(t, 8, n)
}

func TestPauseErrors(t *testing.T) {
	ext := &Server{url: "postgres://x", external: true}
	assert.ErrorContains(t, ext.Pause(), "external")
	assert.ErrorContains(t, ext.Resume(), "external")
	if runtime.GOOS != "linux" {
		return
	}
	s := local(t)
	require.NoError(t, s.Kill())
	assert.ErrorIs(t, s.Pause(), errNotRunning)
	require.NoError(t, s.Stop())
	assert.ErrorContains(t, s.Pause(), "stopped")
}

func TestCrashAndRestart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Crash needs Linux")
	}
	s := local(t)
	ctx := context.Background()
	open, err := pgx.Connect(ctx, s.URL())
	require.NoError(t, err)
	defer open.Close(ctx)
	_, err = open.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
	require.NoError(t, err)

	require.NoError(t, s.Crash())
	require.NoError(t, s.Crash(), "a crashed server: nothing to do")
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = open.Exec(qctx, "SELECT 1")
	cancel()
	assert.Error(t, err, "the open connection is broken")
	_, err = queryInt(ctx, s.URL(), "SELECT 1")
	assert.Error(t, err, "nothing listens")

	require.NoError(t, s.Restart(ctx))
	n, err := queryInt(ctx, s.URL(), "SELECT n FROM kept")
	require.NoError(t, err)
	assert.Equal(t, 42, n, "committed data survives the crash")

	require.NoError(t, s.Pause())
	require.NoError(t, s.Crash(), "a paused server crashes too")
	require.NoError(t, s.Restart(ctx))
	_, err = queryInt(ctx, s.URL(), "SELECT 1")
	require.NoError(t, err)
}
