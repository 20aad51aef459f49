// Package backends chooses and builds the dispatch.Backend for a work pool
// by the pool's type — a plain switch over the backends pushpool ships — and
// reads each cloud's settings from the environment. Entry points (the
// pushpool command, the cloud functions) call For and stay thin.
package backends

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backend/aci"
	"github.com/pushpool/pushpool/dispatch/backend/cloudrun"
	"github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/backend/process"
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

// Environment variables read by For, besides the SDKs' own (AWS_REGION,
// AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, AZURE_CLIENT_ID, ...).
const (
	// EnvAWSEndpoint overrides the ECS and EC2 endpoints (moto, LocalStack).
	EnvAWSEndpoint = "AWS_ENDPOINT_URL"
	// EnvGCPProject is the project of Cloud Run jobs whose configuration
	// names none (GOOGLE_CLOUD_PROJECT is read too).
	EnvGCPProject = "PUSHPOOL_GCP_PROJECT"
	// EnvCloudRunEndpoint points the Cloud Run clients at an emulator
	// (host:port, plaintext, no credentials).
	EnvCloudRunEndpoint = "PUSHPOOL_CLOUDRUN_ENDPOINT"
	// EnvCloudRunSweepAfter is how long after its execution finished a
	// Cloud Run job is deleted by the reconciler's sweep (a Go duration).
	EnvCloudRunSweepAfter = "PUSHPOOL_CLOUDRUN_SWEEP_AFTER"
	// EnvCloudRunAPIKeySecret and EnvCloudRunAuthStringSecret name Secret
	// Manager secrets (ID, ID:VERSION, projects/P/secrets/ID[:VERSION]) that
	// Cloud Run jobs read PREFECT_API_KEY and PREFECT_API_AUTH_STRING from,
	// instead of plaintext values in the job, when the job configuration
	// names no secret of its own.
	EnvCloudRunAPIKeySecret     = "PUSHPOOL_CLOUDRUN_API_KEY_SECRET"
	EnvCloudRunAuthStringSecret = "PUSHPOOL_CLOUDRUN_AUTH_STRING_SECRET"
	// EnvAzureSubscription, EnvACIResourceGroup and EnvACILocation are the
	// defaults of ACI jobs whose configuration names no subscription,
	// resource group or location; the pool's template defaults come next.
	EnvAzureSubscription = "AZURE_SUBSCRIPTION_ID"
	EnvACIResourceGroup  = "PUSHPOOL_ACI_RESOURCE_GROUP"
	EnvACILocation       = "PUSHPOOL_ACI_LOCATION"
	// EnvACISweepAfter is how long after its container exited an ACI
	// container group is deleted by the reconciler's sweep (a Go duration;
	// default 10m).
	EnvACISweepAfter = "PUSHPOOL_ACI_SWEEP_AFTER"
)

// Types returns every pool type a backend serves, sorted.
func Types() []string {
	var all []string
	for _, ts := range [][]string{process.PoolTypes(), ecs.PoolTypes(), cloudrun.PoolTypes(), aci.PoolTypes()} {
		all = append(all, ts...)
	}
	slices.Sort(all)
	return all
}

// DefaultBaseJobTemplate returns Prefect's default base job template for a
// pool type pushpool serves, and false for other types.
func DefaultBaseJobTemplate(poolType string) (map[string]any, bool) {
	switch {
	case slices.Contains(process.PoolTypes(), poolType):
		return process.DefaultBaseJobTemplate(), true
	case slices.Contains(ecs.PoolTypes(), poolType):
		return ecs.DefaultBaseJobTemplate(), true
	case slices.Contains(cloudrun.PoolTypes(), poolType):
		return cloudrun.DefaultBaseJobTemplate(), true
	case slices.Contains(aci.PoolTypes(), poolType):
		return aci.DefaultBaseJobTemplate(), true
	}
	return nil, false
}

// For builds the backend for pool. The caller should Close what it returns
// when done (a no-op for backends without clients to close).
func For(ctx context.Context, pool prefect.WorkPool, s Settings) (dispatch.Backend, error) {
	if s.Lookup == nil {
		s.Lookup = func(string) (string, bool) { return "", false }
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	env := func(name string) string { v, _ := s.Lookup(name); return strings.TrimSpace(v) }
	switch {
	case slices.Contains(process.PoolTypes(), pool.Type):
		return process.New(process.Config{StateDir: s.ProcessStateDir, Output: s.Output, Logger: s.Logger})
	case slices.Contains(ecs.PoolTypes(), pool.Type):
		b, err := ecs.New(ctx, ecs.Config{Endpoint: env(EnvAWSEndpoint), Logger: s.Logger})
		if err != nil {
			return nil, fmt.Errorf("work pool %q (type %s): %w", pool.Name, pool.Type, err)
		}
		return b, nil
	case slices.Contains(cloudrun.PoolTypes(), pool.Type):
		return cloudRun(pool, s, env)
	case slices.Contains(aci.PoolTypes(), pool.Type):
		sweepAfter, err := positiveDuration(env, EnvACISweepAfter)
		if err != nil {
			return nil, fmt.Errorf("work pool %q (type %s): %w", pool.Name, pool.Type, err)
		}
		b, err := aci.New(aci.Config{
			SubscriptionID: first(env(EnvAzureSubscription), templateDefault(pool, "subscription_id")),
			ResourceGroup:  first(env(EnvACIResourceGroup), templateDefault(pool, "resource_group_name")),
			Location:       first(env(EnvACILocation), templateDefault(pool, "location")),
			SweepAfter:     sweepAfter, // zero: the backend's default
			Logger:         s.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("work pool %q (type %s): %w", pool.Name, pool.Type, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("work pool %q has type %q, which pushpool cannot start; supported types: %s (create the pool with one of them, e.g. from pushpool's default templates)",
		pool.Name, pool.Type, strings.Join(Types(), ", "))
}

// cloudRun builds the Cloud Run backend, wrapped so the reconciler's sweep
// covers the pool's default region.
func cloudRun(pool prefect.WorkPool, s Settings, env func(string) string) (dispatch.Backend, error) {
	cfg := cloudrun.Config{Project: first(env(EnvGCPProject), env("GOOGLE_CLOUD_PROJECT")), Logger: s.Logger}
	if ep := env(EnvCloudRunEndpoint); ep != "" {
		cfg.ClientOptions = []option.ClientOption{option.WithEndpoint(ep), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	}
	for _, sv := range []struct {
		name string
		ref  *cloudrun.SecretRef
	}{{EnvCloudRunAPIKeySecret, &cfg.APIKeySecret}, {EnvCloudRunAuthStringSecret, &cfg.AuthStringSecret}} {
		r, err := cloudrun.ParseSecretRef(env(sv.name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sv.name, err)
		}
		*sv.ref = r
	}
	after := 10 * time.Minute
	if v := env(EnvCloudRunSweepAfter); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q is not a positive duration such as 10m", EnvCloudRunSweepAfter, v)
		}
		after = d
	}
	b, err := cloudrun.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("work pool %q (type %s): %w", pool.Name, pool.Type, err)
	}
	region := first(templateDefault(pool, "region"), "us-central1")
	return &sweepingCloudRun{Backend: b, project: cfg.Project, region: region, after: after}, nil
}

// sweepingCloudRun sweeps finished jobs of one project and region after
// every reconcile pass (Cloud Run caps a project at 1,000 jobs).
type sweepingCloudRun struct {
	*cloudrun.Backend
	project, region string
	after           time.Duration
}

// Sweep implements dispatch.Sweeper.
func (c *sweepingCloudRun) Sweep(ctx context.Context) (int, error) {
	if c.project == "" {
		return 0, nil // no project known until a job names one: nothing to sweep
	}
	return c.Backend.Sweep(ctx, c.project, c.region, c.after)
}

// positiveDuration reads the Go duration in environment variable name;
// unset gives zero.
func positiveDuration(env func(string) string, name string) (time.Duration, error) {
	v := env(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration such as 10m", name, v)
	}
	return d, nil
}

// templateDefault returns the string default of a variable in the pool's
// base job template, or "".
func templateDefault(pool prefect.WorkPool, name string) string {
	vars, _ := pool.BaseJobTemplate["variables"].(map[string]any)
	props, _ := vars["properties"].(map[string]any)
	prop, _ := props[name].(map[string]any)
	v, _ := prop["default"].(string)
	return v
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
