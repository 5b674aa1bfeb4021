package pgtest

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// serverUser is the system user Debian's postgresql package creates; under root, initdb and
// postgres run as it.
const serverUser = "postgres"

// account is the user initdb and postgres run as; a nil *account means the current user.
type account struct {
	uid, gid int
}

// serverAccount returns nil unless the process is root, which PostgreSQL refuses to run as;
// then it returns the "postgres" system user. It creates no user: a missing one is an error.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, which PostgreSQL refuses, and there is no %q system user to run it as "+
			"(install Debian's postgresql package, which creates it, or run the tests as an unprivileged user): %w", serverUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %q has a non-numeric uid %q", serverUser, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user %q has a non-numeric gid %q", serverUser, u.Gid)
	}
	return &account{uid: uid, gid: gid}, nil
}

// chown hands path to a, so that a server running as a can write there; no-op for nil a.
func (a *account) chown(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Chown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("pgtest: give %s to user %q: %w", path, serverUser, err)
	}
	return nil
}
