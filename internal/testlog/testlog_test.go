package testlog_test

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/internal/testlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSink(t *testing.T) {
	sink := &testlog.Sink{MinLevel: slog.LevelWarn}
	log := slog.New(sink).With("k", "v")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			log.Info("below the level")
			log.Warn(fmt.Sprintf("write failed %d", i))
		})
	}
	wg.Wait()
	log.Error("read failed")
	assert.Equal(t, 8, sink.Count("write failed"))
	assert.Equal(t, 8, sink.Count("WARN write failed"), "the level is kept")
	assert.Equal(t, 1, sink.Count("ERROR read failed"))
	assert.Zero(t, sink.Count("below the level"), "below MinLevel")
}

func TestBuffer(t *testing.T) {
	var b testlog.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = b.Write([]byte("x")) })
	}
	wg.Wait()
	assert.Equal(t, "xxxxxxxx", b.String())
}
