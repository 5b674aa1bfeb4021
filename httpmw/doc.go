// Package httpmw guards net/http servers and clients with bulkheads from package core.
package httpmw
