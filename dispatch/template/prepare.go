package template

import (
	"time"
)

// PrefectVersion is the Prefect release whose worker behaviour this package
// reproduces and is tested against. Prepare writes it to the
// prefect.io/version label unless RunInfo.PrefectVersion says otherwise.
const PrefectVersion = "3.9.1"

// DefaultCommand is the command a job runs when its configuration sets none
// (BaseJobConfiguration._base_flow_run_command).
const DefaultCommand = "prefect flow-run execute"

// RunInfo describes the flow run being prepared and the dispatcher preparing
// it. Empty strings mean "absent", where Prefect passes None.
type RunInfo struct {
	// FlowRunID and FlowRunName identify the flow run.
	FlowRunID, FlowRunName string
	// FlowID and FlowName identify its flow; FlowID empty means no flow.
	FlowID, FlowName string
	// DeploymentID, DeploymentName and DeploymentUpdated describe its
	// deployment; DeploymentID empty means no deployment, a zero
	// DeploymentUpdated means no prefect.io/deployment-updated label.
	DeploymentID, DeploymentName string
	DeploymentUpdated            time.Time
	// WorkPoolID and WorkPoolName identify the work pool; both empty means
	// no work pool labels.
	WorkPoolID, WorkPoolName string
	// WorkerName and WorkerID identify the dispatcher as Prefect's worker
	// would identify itself (PREFECT__WORKER_NAME, PREFECT__WORKER_ID).
	WorkerName, WorkerID string
	// SettingsEnv is the dispatcher's own Prefect settings as environment
	// variables, such as PREFECT_API_URL, PREFECT_API_KEY or
	// PREFECT_API_AUTH_STRING: what Prefect's
	// get_current_settings().to_environment_variables(exclude_unset=True)
	// gives a worker. The job configuration's env overrides them, and an env
	// value of null removes one.
	SettingsEnv map[string]string
	// FlowRun and Flow are the flow run and flow as the Prefect API returned
	// them (decoded with UseNumber). They are the {{ ctx.flow_run.* }} and
	// {{ ctx.flow.* }} values of a job name template. When nil, objects
	// holding only the identifiers above are used.
	FlowRun, Flow map[string]any
	// Env answers {{ $NAME }} placeholders in the job name.
	Env LookupEnv
	// PrefectVersion is the prefect.io/version label; empty means the
	// PrefectVersion constant.
	PrefectVersion string
}

// Prepare is BaseJobConfiguration.prepare_for_flow_run on a configuration
// returned by Render. It returns a new configuration in which:
//
//   - env is SettingsEnv, then PREFECT__FLOW_RUN_ID and the attribution
//     variables (PREFECT__WORKER_ID, PREFECT__WORKER_NAME, PREFECT__FLOW_ID,
//     PREFECT__FLOW_NAME, PREFECT__DEPLOYMENT_ID, PREFECT__DEPLOYMENT_NAME),
//     then the configuration's own env, with null values removed;
//   - labels are the prefect.io/* labels of the flow run, work pool, worker,
//     flow and deployment, overridden by the configuration's own labels;
//   - a non-empty name is rendered once more with {{ ctx.flow_run.* }} and
//     {{ ctx.flow.* }} values, and an empty one becomes the flow run's name;
//   - an empty command becomes DefaultCommand.
//
// The input is not modified.
func Prepare(config map[string]any, info RunInfo) map[string]any {
	out := deepCopyMap(config)
	if out == nil {
		out = map[string]any{}
	}

	env := map[string]any{}
	for k, v := range info.SettingsEnv {
		env[k] = v
	}
	env["PREFECT__FLOW_RUN_ID"] = info.FlowRunID
	setIf(env, "PREFECT__WORKER_ID", info.WorkerID)
	setIf(env, "PREFECT__WORKER_NAME", info.WorkerName)
	setIf(env, "PREFECT__FLOW_ID", info.FlowID)
	setIf(env, "PREFECT__FLOW_NAME", info.FlowName)
	setIf(env, "PREFECT__DEPLOYMENT_ID", info.DeploymentID)
	setIf(env, "PREFECT__DEPLOYMENT_NAME", info.DeploymentName)
	if own, ok := out["env"].(map[string]any); ok {
		for k, v := range own {
			env[k] = v
		}
	}
	for k, v := range env {
		if v == nil {
			delete(env, k)
		}
	}
	out["env"] = env

	version := info.PrefectVersion
	if version == "" {
		version = PrefectVersion
	}
	labels := map[string]any{
		"prefect.io/flow-run-id":   info.FlowRunID,
		"prefect.io/flow-run-name": info.FlowRunName,
		"prefect.io/version":       version,
	}
	if info.WorkPoolID != "" || info.WorkPoolName != "" {
		labels["prefect.io/work-pool-name"] = info.WorkPoolName
		labels["prefect.io/work-pool-id"] = info.WorkPoolID
	}
	setIf(labels, "prefect.io/worker-name", info.WorkerName)
	if info.FlowID != "" {
		labels["prefect.io/flow-id"] = info.FlowID
		labels["prefect.io/flow-name"] = info.FlowName
	}
	if info.DeploymentID != "" {
		labels["prefect.io/deployment-id"] = info.DeploymentID
		labels["prefect.io/deployment-name"] = info.DeploymentName
		if !info.DeploymentUpdated.IsZero() {
			labels["prefect.io/deployment-updated"] = pyISOFormat(info.DeploymentUpdated)
		}
	}
	if own, ok := out["labels"].(map[string]any); ok {
		for k, v := range own {
			labels[k] = v
		}
	}
	out["labels"] = labels

	name := out["name"]
	if truthy(name) {
		values := map[string]any{"ctx": map[string]any{
			"flow":     info.flowContext(),
			"flow_run": info.flowRunContext(),
		}}
		if rendered, ok, err := applyValues(newPlaceholderFinder(), name, values, info.Env); err == nil && ok {
			name = rendered
		}
	}
	if !truthy(name) {
		name = info.FlowRunName
	}
	out["name"] = name

	if !truthy(out["command"]) {
		out["command"] = DefaultCommand
	}
	return out
}

func setIf(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

func (info RunInfo) flowRunContext() map[string]any {
	if info.FlowRun != nil {
		return info.FlowRun
	}
	ctx := map[string]any{"id": info.FlowRunID, "name": info.FlowRunName, "flow_id": info.FlowID, "deployment_id": nil}
	if info.DeploymentID != "" {
		ctx["deployment_id"] = info.DeploymentID
	}
	return ctx
}

func (info RunInfo) flowContext() map[string]any {
	if info.Flow != nil {
		return info.Flow
	}
	if info.FlowID == "" {
		return map[string]any{}
	}
	return map[string]any{"id": info.FlowID, "name": info.FlowName}
}

// pyISOFormat is Python's datetime.astimezone(UTC).isoformat(): microsecond
// precision, the fraction only when not zero, and a +00:00 offset.
func pyISOFormat(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	return t.Format("2006-01-02T15:04:05.000000+00:00")
}
