package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoPostgres is the error Start returns (wrapped, naming the places it looked) when it
// finds no directory holding both initdb and postgres. On Windows, where pgtest does not
// look for .exe files, it always does. Tests treat it as "skip" unless
// BULKMAN_REQUIRE_POSTGRES is set; see [SkipOrFail].
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres) found")

// debianBinGlob is where Debian and Ubuntu install one directory per major version; none of
// it is in PATH.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// findBinDir returns the first directory that holds both initdb and postgres: explicit when
// it is non-empty, otherwise initdb's directory in PATH, then Debian's directories from the
// highest major version down. Both programs must come from one directory, because initdb
// runs the postgres next to it and a mixed pair would not agree on the data format.
func findBinDir(explicit string) (string, error) {
	var candidates []string
	if explicit != "" {
		candidates = []string{explicit}
	} else {
		if p, err := exec.LookPath("initdb"); err == nil {
			candidates = append(candidates, filepath.Dir(p))
		}
		matches, _ := filepath.Glob(debianBinGlob) // the pattern is valid, so no error
		candidates = append(candidates, newestFirst(matches)...)
	}
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	if explicit != "" {
		return "", fmt.Errorf("%w in %s", ErrNoPostgres, explicit)
	}
	return "", fmt.Errorf("%w in PATH or %s", ErrNoPostgres, debianBinGlob)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// newestFirst sorts Debian's per-version bin directories from the highest version down,
// comparing versions by number (15 after 9.6).
func newestFirst(dirs []string) []string {
	slices.SortStableFunc(dirs, func(a, b string) int {
		return slices.Compare(versionOf(b), versionOf(a))
	})
	return dirs
}

// versionOf returns the numeric parts of the version directory in a path such as
// /usr/lib/postgresql/9.6/bin; a part that is not a number counts as 0.
func versionOf(binDir string) []int {
	parts := strings.Split(filepath.Base(filepath.Dir(binDir)), ".")
	v := make([]int, len(parts))
	for i, p := range parts {
		v[i], _ = strconv.Atoi(p)
	}
	return v
}
