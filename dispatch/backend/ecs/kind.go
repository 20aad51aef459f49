package ecs

import (
	"context"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// EnvEndpoint overrides the ECS and EC2 endpoints (moto, LocalStack). The
// SDK's own variables (AWS_REGION, AWS_PROFILE, ...) are read by it.
const EnvEndpoint = "AWS_ENDPOINT_URL"

// Kind offers the ECS backend to a build (dispatch/backends).
func Kind() backends.Kind {
	return backends.Kind{Family: pooltype.ECS, New: func(ctx context.Context, _ prefect.WorkPool, s backends.Settings) (dispatch.Backend, error) {
		return New(ctx, Config{Endpoint: s.Env(EnvEndpoint), Logger: s.Logger})
	}}
}
