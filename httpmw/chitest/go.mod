module github.com/bulkman-go/bulkman/httpmw/chitest

go 1.26.8

replace github.com/bulkman-go/bulkman => ../..

require (
	github.com/bulkman-go/bulkman v0.0.0-00010101000000-000000000000
	github.com/go-chi/chi/v5 v5.5.0
	github.com/stretchr/testify v1.12.1
	go.uber.org/goleak v1.3.0
)

require (
	github.com/bits-and-blooms/bitset v1.24.4 // indirect
	github.com/failsafe-go/failsafe-go v0.9.8 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
