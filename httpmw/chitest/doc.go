// Package chitest tests httpmw with the chi router (github.com/go-chi/chi/v5). It is a
// module of its own so that users of bulkman never download chi: only these tests need
// it. Run them from this directory with go test ./... (.ci/run does).
package chitest
