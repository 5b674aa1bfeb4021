#!/usr/bin/env bash
# The documentation check, called by .ci/run:
#   1. docs/docs_test.go: every Go code block of the guide (and of design.md and
#      migrating-from-bulkman.md) is marked, names an Example function or an examples/
#      program that exists, and is a copy of (part of) its code; relative links resolve;
#   2. the Example functions the guide names run and print their // Output:;
#   3. every program under examples/ builds (.ci/examples.sh runs them).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "-- go test ./docs (markers, code blocks, links)"
go test -count=1 -run '^TestDocs|^TestUserGuide' ./docs

echo "-- the Examples the docs name"
declare -A names=()
while IFS= read -r target; do
  dir=${target%.*}
  name=${target##*.}
  names[$dir]+="${names[$dir]:+|}$name"
done < <(grep -ho '<!-- example: [^ ]* -->' docs/*.md | sed -E 's/<!-- example: ([^ ]*) -->/\1/' | sort -u)
for dir in $(printf '%s\n' "${!names[@]}" | sort); do
  go test -count=1 -run "^(${names[$dir]})\$" "./$dir"
done

echo "-- go build ./examples/..."
go build ./examples/...
