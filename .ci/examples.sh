#!/usr/bin/env bash
# Builds every program under examples/ and runs each one; they all finish by themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
go build ./examples/...
for dir in examples/*/; do
  name=$(basename "$dir")
  echo "-- go run ./examples/$name"
  timeout 120 go run "./examples/$name" > "/tmp/bulkman-example-$name.log" 2>&1 || {
    echo "examples/$name failed:"; cat "/tmp/bulkman-example-$name.log"; exit 1; }
  tail -n 3 "/tmp/bulkman-example-$name.log"
done
