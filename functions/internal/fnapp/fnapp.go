// Package fnapp turns a cloud function's environment into an
// invoke.Handler: the environment contract every platform shares
// (PREFECT_API_URL, PUSHPOOL_POOLS, ...), the Prefect client, and one
// dispatcher and reconciler per pool with the backend of the pool's type.
// Platform packages add their secrets and queue.
package fnapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/backends"
	"github.com/pushpool/pushpool/dispatch/invoke"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/dispatch/prefectenv"
)

// The environment variables every function reads. The platform's own
// variables (secret references, queue names) are read by its package.
const (
	EnvPools             = "PUSHPOOL_POOLS"
	EnvWorkerName        = "PUSHPOOL_WORKER_NAME"
	EnvShardSize         = "PUSHPOOL_SHARD_SIZE"
	EnvLookahead         = "PREFECT_WORKER_PREFETCH_SECONDS"
	EnvReadCache         = "PUSHPOOL_READ_CACHE_SECONDS"
	EnvWakeHorizon       = "PUSHPOOL_WAKE_HORIZON_SECONDS"
	EnvSubmitReserve     = "PUSHPOOL_SUBMIT_RESERVE_SECONDS"
	EnvMaxSubmissions    = "PUSHPOOL_MAX_CONCURRENT_SUBMISSIONS"
	EnvFlowHeartbeat     = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
	EnvProcessStateDir   = "PUSHPOOL_PROCESS_STATE_DIR"
	EnvLogLevel          = "PREFECT_LOGGING_LEVEL"
	defaultWorkerName    = "pushpool-function"
	defaultShardSize     = 20
	defaultLookahead     = dispatch.DefaultLookahead
	defaultWakeHorizon   = 90 * time.Second
	defaultSubmitReserve = 20 * time.Second
)

// Settings is the shared environment contract, read by FromEnv.
type Settings struct {
	Prefect        prefect.Config
	Pools          []string
	WorkerName     string
	ShardSize      int
	Lookahead      time.Duration
	ReadCache      time.Duration
	WakeHorizon    time.Duration
	SubmitReserve  time.Duration
	MaxSubmissions int
	FlowHeartbeat  time.Duration
	// NoRunLabels is dispatch.Config.NoRunLabels: PUSHPOOL_RUN_LABELS=false.
	NoRunLabels bool
	// TemplateEnv is dispatch.Config.TemplateEnv, from
	// PUSHPOOL_TEMPLATE_ENV (nil when unset: the default).
	TemplateEnv []string
	Lookup      func(string) (string, bool)
}

// FromEnv reads the settings. The Prefect API key may be absent here when
// the platform fetches it from its secret store (set Settings.Prefect.APIKey
// before Build). Every error names the variable and the fix.
func FromEnv(lookup func(string) (string, bool)) (Settings, error) {
	pc, err := prefect.ConfigFromEnv(lookup)
	if err != nil {
		return Settings{}, err
	}
	if pc.URL == "" {
		return Settings{}, fmt.Errorf("%s is not set: set it to the Prefect server's API, e.g. https://prefect.example.com/api", prefect.EnvAPIURL)
	}
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var errs []error
	seconds := func(name string, def time.Duration) time.Duration {
		v := get(name)
		if v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			errs = append(errs, fmt.Errorf("%s is %q; it must be a number of seconds, like 10 or 2.5", name, v))
			return def
		}
		return time.Duration(f * float64(time.Second))
	}
	integer := func(name string, def int) int {
		v := get(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s is %q; it must be a whole number of at least 1", name, v))
			return def
		}
		return n
	}
	boolean := func(name string, def bool) bool {
		v := get(name)
		if v == "" {
			return def
		}
		b, ok := prefectenv.ParseBool(v)
		if !ok {
			errs = append(errs, fmt.Errorf("%s is %q; it must be true or false", name, v))
			return def
		}
		return b
	}
	s := Settings{
		Prefect:        pc,
		WorkerName:     get(EnvWorkerName),
		ShardSize:      integer(EnvShardSize, defaultShardSize),
		Lookahead:      seconds(EnvLookahead, defaultLookahead),
		ReadCache:      seconds(EnvReadCache, dispatch.DefaultReadCacheTTL),
		WakeHorizon:    seconds(EnvWakeHorizon, defaultWakeHorizon),
		SubmitReserve:  seconds(EnvSubmitReserve, defaultSubmitReserve),
		MaxSubmissions: integer(EnvMaxSubmissions, 16),
		FlowHeartbeat:  seconds(EnvFlowHeartbeat, 0),
		NoRunLabels:    !boolean(dispatch.EnvRunLabels, true),
		Lookup:         lookup,
	}
	if v, ok := lookup(dispatch.EnvTemplateEnv); ok {
		list, err := dispatch.ParseTemplateEnv(v)
		if err != nil {
			errs = append(errs, err)
		}
		s.TemplateEnv = list
	}
	for _, p := range strings.Split(get(EnvPools), ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.Pools = append(s.Pools, p)
		}
	}
	if len(s.Pools) == 0 {
		errs = append(errs, fmt.Errorf("%s is not set: set it to the work pools this function dispatches, comma-separated, e.g. ecs-push,ecs-spot", EnvPools))
	}
	if s.WorkerName == "" {
		s.WorkerName = defaultWorkerName
	}
	return s, errors.Join(errs...)
}

// Build connects to Prefect and returns the Handler. Engines are built per
// pool on first use, so a pool that does not exist fails only its own work;
// linked are the backends the function's build links (its own cloud's).
func Build(s Settings, linked backends.Set, queue invoke.Queue, webhookSecret []byte, logger *slog.Logger) (*invoke.Handler, error) {
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: LogLevel(s.Lookup)}))
	}
	pc := s.Prefect
	pc.Logger = logger
	if pc.UserAgent == "" {
		pc.UserAgent = "pushpool-function"
	}
	api, err := prefect.New(pc)
	if err != nil {
		return nil, err
	}
	// Every Prefect setting the function was given reaches its jobs, as a
	// worker's do, with the API connection it uses.
	settingsEnv := prefectenv.ForJobs(s.Lookup)
	settingsEnv[prefect.EnvAPIURL] = pc.URL
	if pc.APIKey != "" {
		settingsEnv[prefect.EnvAPIKey] = pc.APIKey
	}
	if pc.AuthString != "" {
		settingsEnv[prefect.EnvAuthString] = pc.AuthString
	}
	connect := func(ctx context.Context, pool string) (invoke.Engine, error) {
		wp, err := api.ReadWorkPool(ctx, pool)
		if err != nil {
			if prefect.IsNotFound(err) {
				return invoke.Engine{}, fmt.Errorf("work pool %q does not exist at %s: create it, or remove it from %s: %w", pool, api.URL(), EnvPools, err)
			}
			return invoke.Engine{}, fmt.Errorf("read work pool %q: %w", pool, err)
		}
		stateDir, _ := s.Lookup(EnvProcessStateDir)
		b, err := linked.For(ctx, wp, backends.Settings{Lookup: s.Lookup, ProcessStateDir: stateDir, Logger: logger})
		if err != nil {
			return invoke.Engine{}, err
		}
		d, err := dispatch.New(dispatch.Config{
			WorkerName:               s.WorkerName,
			Lookahead:                s.Lookahead,
			ReadCacheTTL:             s.ReadCache,
			MaxConcurrentSubmissions: s.MaxSubmissions,
			SubmitReserve:            s.SubmitReserve,
			SettingsEnv:              settingsEnv,
			LookupEnv:                s.Lookup,
			TemplateEnv:              s.TemplateEnv,
			NoRunLabels:              s.NoRunLabels,
		}, api, b, logger)
		if err != nil {
			return invoke.Engine{}, err
		}
		r, err := dispatch.NewReconciler(d, dispatch.ReconcileConfig{FlowHeartbeatFrequency: s.FlowHeartbeat})
		if err != nil {
			return invoke.Engine{}, err
		}
		return invoke.Engine{Dispatcher: d, Reconciler: r}, nil
	}
	return invoke.New(invoke.Config{
		Pools: s.Pools, ShardSize: s.ShardSize, Lookahead: s.Lookahead, WakeHorizon: s.WakeHorizon,
		Queue: queue, WebhookSecret: webhookSecret,
	}, api, connect, logger)
}

// LogLevel reads PREFECT_LOGGING_LEVEL, as every pushpool entry point does.
func LogLevel(lookup func(string) (string, bool)) slog.Level {
	v, _ := lookup(EnvLogLevel)
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "DEBUG":
		return slog.LevelDebug
	case "WARNING", "WARN":
		return slog.LevelWarn
	case "ERROR", "CRITICAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}
