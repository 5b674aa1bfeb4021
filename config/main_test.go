package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bulkman-go/bulkman/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// problems returns the *config.Error values joined in err, in order.
func problems(t *testing.T, err error) []*config.Error {
	t.Helper()
	require.Error(t, err)
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]*config.Error, 0, len(errs))
	for _, e := range errs {
		var ce *config.Error
		require.ErrorAs(t, e, &ce, "every problem is a *config.Error: %v", e)
		out = append(out, ce)
	}
	return out
}

// errorsOf is problems without a *testing.T, for the fuzz target.
func errorsOf(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
