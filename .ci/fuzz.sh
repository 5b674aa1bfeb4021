#!/usr/bin/env bash
# Runs every fuzz target of the module briefly: FUZZTIME inputs each (default
# 50000x, about 3 s for FuzzNew and 8 s for FuzzParse on the 2-core CI machine).
#
# The budget is a count of executions, not a duration: with a duration, Go's
# fuzz coordinator (go1.26.x) can report a bare "context deadline exceeded"
# failure when the time is up while a worker is mid-call, with no failing
# input (golang/go#75804, fixed in go1.27). A count has no deadline to race;
# a real finding still fails the run and writes testdata/fuzz/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-50000x}
found=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "-- $name in $pkg ($fuzztime)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
  found=$((found + 1))
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' ':!bench/**')
echo "$found fuzz targets run"
