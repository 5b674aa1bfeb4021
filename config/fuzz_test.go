package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bulkman-go/bulkman/config"
	"github.com/bulkman-go/bulkman/core"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, and it returns either a
// File whose bulkheads pass Validate or problems that each name the file.
func FuzzParse(f *testing.F) {
	for _, tc := range goodFiles {
		f.Add([]byte(tc.data))
	}
	for _, tc := range badFiles {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			if file != nil {
				t.Fatalf("both a File and an error: %v", err)
			}
			for _, e := range errorsOf(err) {
				var ce *config.Error
				if !errors.As(e, &ce) || ce.File != "fuzz.yaml" || ce.Line < 0 || ce.Column < 0 {
					t.Fatalf("not a *config.Error naming the file: %#v", e)
				}
				if !strings.HasPrefix(e.Error(), "fuzz.yaml") {
					t.Fatalf("message does not start with the file: %q", e.Error())
				}
			}
			return
		}
		names := make(map[string]bool)
		for _, c := range file.Bulkheads() {
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted an invalid bulkhead: %v", err)
			}
			if names[c.Name] {
				t.Fatalf("accepted a duplicate name %q", c.Name)
			}
			names[c.Name] = true
		}
		for _, routes := range []map[string]string{file.GRPCRoutes(), file.HTTPRoutes()} {
			for p, name := range routes {
				if name != "" && !names[name] {
					t.Fatalf("route %q names a missing bulkhead %q", p, name)
				}
			}
		}
		// An accepted file applies to a fresh Manager.
		m := core.NewManager()
		live, err := config.New(m, file)
		if err != nil {
			t.Fatalf("an accepted file does not apply: %v", err)
		}
		live.Close()
	})
}
