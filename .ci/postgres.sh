# shellcheck shell=bash
# Sourced by .ci/run. Makes sure PostgreSQL's server binaries are installed, so that the tests
# that need a real database (internal/pgtest and its users) run instead of skipping, and sets
# BULKMAN_REQUIRE_POSTGRES so that they fail, not skip, if PostgreSQL is still missing.
# Quiet and idempotent: it installs only when no initdb is found, where internal/pgtest looks
# (PATH, then /usr/lib/postgresql/*/bin). It never exits: it is sourced.

bulkman_have_initdb() {
	command -v initdb >/dev/null 2>&1 && return 0
	local dir
	for dir in /usr/lib/postgresql/*/bin; do
		[ -x "$dir/initdb" ] && return 0
	done
	return 1
}

if ! bulkman_have_initdb; then
	bulkman_sudo=""
	if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
		bulkman_sudo="sudo -n"
	fi
	echo ".ci/postgres.sh: no initdb found; installing Debian's postgresql package" >&2
	bulkman_aptlog=$(mktemp)
	# apt's output is shown only when it fails.
	# shellcheck disable=SC2086 # $bulkman_sudo is empty or two words on purpose
	if ! { $bulkman_sudo apt-get update -qq &&
		$bulkman_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >"$bulkman_aptlog" 2>&1; then
		cat "$bulkman_aptlog" >&2
		echo ".ci/postgres.sh: installing postgresql failed; the tests that need it will fail" >&2
	fi
	rm -f "$bulkman_aptlog"
	unset bulkman_sudo bulkman_aptlog
fi
unset -f bulkman_have_initdb

export BULKMAN_REQUIRE_POSTGRES=1
