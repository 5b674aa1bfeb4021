package pgtest

// Pause freezes the server as a hung host or a stopped process would: the postmaster and
// every process it forked (the backends serving open connections, the background
// workers) get SIGSTOP. Open connections stay open and their queries never answer; a new
// connection is accepted by the kernel but never greeted. Clients see a database that
// hangs, not one that is down. [Server.Resume] lets it go on; [Server.Kill],
// [Server.Restart] and [Server.Stop] resume it first. Pause on a paused server does
// nothing. Safe for concurrent use.
//
// Errors: the Server is external or stopped, it is not running (killed), or the platform
// cannot enumerate the postmaster's children (only Linux can).
func (s *Server) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocal("pause"); err != nil {
		return err
	}
	if s.paused != nil {
		return nil
	}
	if s.proc == nil {
		return errNotRunning
	}
	pids, err := freeze(s.proc.cmd.Process.Pid)
	if err != nil {
		return err
	}
	s.paused = pids
	return nil
}

// Resume lets a server that [Server.Pause] froze go on: its processes get SIGCONT, and the
// queries that waited are answered. Resume on a server that is not paused does nothing.
// Safe for concurrent use. It returns an error only when the Server is external or stopped.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocal("resume"); err != nil {
		return err
	}
	s.resumeLocked()
	return nil
}

// resumeLocked sends SIGCONT to what Pause stopped, children before the postmaster. s.mu
// must be held.
func (s *Server) resumeLocked() {
	thaw(s.paused)
	s.paused = nil
}

// Crash kills the server as kill -9 would, or the OOM killer, or a power cut to a
// container: the postmaster and every process it forked get SIGKILL at once and run no
// code after it (unlike [Server.Kill], an immediate shutdown that the postmaster carries
// out). Crash waits until they are gone. The data directory and the port number are kept
// for [Server.Restart], which then runs crash recovery. Crash on a server that is not
// running does nothing. Safe for concurrent use.
//
// Errors: the Server is external or stopped, or the platform cannot enumerate the
// postmaster's children (only Linux can).
func (s *Server) Crash() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkLocal("crash"); err != nil {
		return err
	}
	p := s.proc
	if p == nil {
		return nil
	}
	s.paused = nil // SIGKILL needs no SIGCONT
	if err := killTree(p.cmd.Process.Pid); err != nil {
		return err
	}
	<-p.done
	s.proc = nil
	return nil
}
