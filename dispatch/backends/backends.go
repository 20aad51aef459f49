// Package backends chooses and builds the dispatch.Backend for a work pool
// from the backends one build links. Each build says which it links: the
// pushpool command links every backend (dispatch/backends/all), a cloud
// function only its own cloud's, so a Lambda bootstrap carries no Google or
// Azure SDK. A backend package offers itself as a Kind; this package links
// none and no cloud SDK.
package backends

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Settings are what backends need beyond the pool itself.
type Settings struct {
	// Lookup reads the environment (os.LookupEnv in production). The cloud
	// SDKs' own credential chains also read the process environment.
	Lookup func(string) (string, bool)
	// ProcessStateDir is where the process backend keeps its run records.
	ProcessStateDir string
	// Output receives the output of process jobs; nil means only their log files.
	Output io.Writer
	// Logger receives the backends' logs; nil discards.
	Logger *slog.Logger
}

// Env returns the trimmed value of environment variable name, "" when unset.
func (s Settings) Env(name string) string {
	if s.Lookup == nil {
		return ""
	}
	v, _ := s.Lookup(name)
	return strings.TrimSpace(v)
}

// Kind is one backend a build can link: the pool types it serves and how
// it is built for a pool.
type Kind struct {
	// Family is the pool types the backend serves.
	Family pooltype.Family
	// New builds the backend for pool. Settings' Logger is never nil.
	New func(ctx context.Context, pool prefect.WorkPool, s Settings) (dispatch.Backend, error)
}

// Set is the backends a build links; For builds only these.
type Set []Kind

// Types returns every pool type the set serves, sorted.
func (set Set) Types() []string {
	var all []string
	for _, k := range set {
		all = append(all, k.Family.Types()...)
	}
	slices.Sort(all)
	return all
}

// For builds the backend for pool. The caller should Close what it returns
// when done (a no-op for backends without clients to close).
func (set Set) For(ctx context.Context, pool prefect.WorkPool, s Settings) (dispatch.Backend, error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	family, known := pooltype.Of(pool.Type)
	for _, k := range set {
		if known && k.Family == family {
			b, err := k.New(ctx, pool, s)
			if err != nil {
				return nil, fmt.Errorf("work pool %q (type %s): %w", pool.Name, pool.Type, err)
			}
			return b, nil
		}
	}
	if known {
		return nil, fmt.Errorf("work pool %q has type %q, which this build does not start (it links only the backends for %s): serve the pool with the function built for its cloud, or with the pushpool command, which links every backend",
			pool.Name, pool.Type, strings.Join(set.Types(), ", "))
	}
	return nil, fmt.Errorf("work pool %q has type %q, which pushpool cannot start; supported types: %s (create the pool with one of them, e.g. from pushpool's default templates)",
		pool.Name, pool.Type, strings.Join(pooltype.All(), ", "))
}

// TemplateDefault returns the string default of a variable in the pool's
// base job template, or "".
func TemplateDefault(pool prefect.WorkPool, name string) string {
	vars, _ := pool.BaseJobTemplate["variables"].(map[string]any)
	props, _ := vars["properties"].(map[string]any)
	prop, _ := props[name].(map[string]any)
	v, _ := prop["default"].(string)
	return v
}

// PositiveDuration reads the Go duration in environment variable name;
// unset gives zero.
func (s Settings) PositiveDuration(name string) (time.Duration, error) {
	v := s.Env(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 10m", name, v)
	}
	return d, nil
}
