package process

import (
	"context"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Kind offers the process backend to a build (dispatch/backends): runs
// start as local processes, recorded in Settings.ProcessStateDir.
func Kind() backends.Kind {
	return backends.Kind{Family: pooltype.Process, New: func(_ context.Context, _ prefect.WorkPool, s backends.Settings) (dispatch.Backend, error) {
		return New(Config{StateDir: s.ProcessStateDir, Output: s.Output, Logger: s.Logger})
	}}
}
