package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// process is one run of the postmaster.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// launchLocked starts the postmaster on s.port and waits until it accepts connections. On
// failure no process is left running. s.mu must be held.
func (s *Server) launchLocked(ctx context.Context) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close() // the child has its own descriptor
	fi, err := logf.Stat()
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	logStart := fi.Size() // this run's lines start here
	// The flags trade durability against an operating-system crash for speed: fsync and
	// full-page writes are off, but every commit still reaches the kernel before it returns
	// (synchronous_commit stays on), so a Kill loses no committed transaction.
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"),
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.sockDir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
	)
	s.prepare(cmd, logf)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres (%s): %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // an exit status says nothing the log does not
		close(p.done)
	}()
	s.proc = p
	if err := waitReady(ctx, s.urlFor("postgres"), p); err != nil {
		s.killLocked()
		tail := logTail(s.logPath, logStart)
		if strings.Contains(tail, "Address already in use") {
			err = errors.Join(errPortInUse, err)
		}
		return fmt.Errorf("pgtest: postgres on 127.0.0.1:%d did not start: %w%s", s.port, err, tail)
	}
	return nil
}

// waitReady connects to url until a connection succeeds, p exits, or ctx ends.
func waitReady(ctx context.Context, url string, p *process) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	const poll = 20 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections: %w", ctx.Err())
		case <-t.C:
		}
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.ConnectConfig(attempt, cfg)
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		t.Reset(poll)
	}
}

// killLocked stops the postmaster at once and waits until it has exited; no-op when none
// runs. s.mu must be held.
func (s *Server) killLocked() {
	s.resumeLocked() // a stopped process keeps SIGQUIT pending
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	_ = p.cmd.Process.Signal(quitSignal) // fails only when it has already exited
	select {
	case <-p.done:
		return
	case <-time.After(killGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail returns the last lines written to the log at path from offset on, formatted to
// end an error message, or "" when there are none.
func logTail(path string, offset int64) string {
	const maxBytes, maxLines = 8 << 10, 30
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	offset = max(offset, fi.Size()-maxBytes)
	if offset >= fi.Size() {
		return ""
	}
	buf := make([]byte, fi.Size()-offset)
	n, _ := f.ReadAt(buf, offset)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	text := strings.Join(lines, "\n")
	if strings.TrimSpace(text) == "" {
		return ""
	}
	return fmt.Sprintf("\n--- %s (last lines) ---\n%s", filepath.Base(path), text)
}
