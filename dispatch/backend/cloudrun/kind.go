package cloudrun

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/dispatch/prefect"
)

// Environment variables read by Kind's backends, besides the SDK's own
// (GOOGLE_APPLICATION_CREDENTIALS, ...).
const (
	// EnvProject is the project of Cloud Run jobs whose configuration names
	// none (GOOGLE_CLOUD_PROJECT is read too).
	EnvProject = "PUSHPOOL_GCP_PROJECT"
	// EnvEndpoint points the Cloud Run clients at an emulator (host:port,
	// plaintext, no credentials).
	EnvEndpoint = "PUSHPOOL_CLOUDRUN_ENDPOINT"
	// EnvSweepAfter is how long after its execution finished a Cloud Run
	// job is deleted by the reconciler's sweep (a Go duration; default 10m).
	EnvSweepAfter = "PUSHPOOL_CLOUDRUN_SWEEP_AFTER"
	// EnvAPIKeySecret and EnvAuthStringSecret name Secret Manager secrets
	// (ID, ID:VERSION, projects/P/secrets/ID[:VERSION]) that Cloud Run jobs
	// read PREFECT_API_KEY and PREFECT_API_AUTH_STRING from, instead of
	// plaintext values in the job, when the job configuration names no
	// secret of its own.
	EnvAPIKeySecret     = "PUSHPOOL_CLOUDRUN_API_KEY_SECRET"
	EnvAuthStringSecret = "PUSHPOOL_CLOUDRUN_AUTH_STRING_SECRET"
)

// defaultSweepAfter is EnvSweepAfter's default.
const defaultSweepAfter = 10 * time.Minute

// Kind offers the Cloud Run backend to a build (dispatch/backends). Its
// backends sweep finished jobs of the pool's default region after every
// reconcile pass (Cloud Run caps a project at 1,000 jobs).
func Kind() backends.Kind {
	return backends.Kind{Family: pooltype.CloudRun, New: func(_ context.Context, pool prefect.WorkPool, s backends.Settings) (dispatch.Backend, error) {
		cfg := Config{Project: cmp.Or(s.Env(EnvProject), s.Env("GOOGLE_CLOUD_PROJECT")), Logger: s.Logger}
		if ep := s.Env(EnvEndpoint); ep != "" {
			cfg.ClientOptions = []option.ClientOption{option.WithEndpoint(ep), option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
		}
		for _, sv := range []struct {
			name string
			ref  *SecretRef
		}{{EnvAPIKeySecret, &cfg.APIKeySecret}, {EnvAuthStringSecret, &cfg.AuthStringSecret}} {
			r, err := ParseSecretRef(s.Env(sv.name))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sv.name, err)
			}
			*sv.ref = r
		}
		after, err := s.PositiveDuration(EnvSweepAfter)
		if err != nil {
			return nil, err
		}
		b, err := New(cfg)
		if err != nil {
			return nil, err
		}
		region := cmp.Or(backends.TemplateDefault(pool, "region"), "us-central1")
		return &sweeping{Backend: b, project: cfg.Project, region: region, after: cmp.Or(after, defaultSweepAfter)}, nil
	}}
}

// sweeping sweeps finished jobs of one project and region after every
// reconcile pass.
type sweeping struct {
	*Backend
	project, region string
	after           time.Duration
}

// Sweep implements dispatch.Sweeper.
func (c *sweeping) Sweep(ctx context.Context) (int, error) {
	if c.project == "" {
		return 0, nil // no project known until a job names one: nothing to sweep
	}
	return c.Backend.Sweep(ctx, c.project, c.region, c.after)
}
