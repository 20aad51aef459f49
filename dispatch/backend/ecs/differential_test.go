package ecs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// prefectPrepare runs prefect-aws's ECSWorker._prepare_task_definition and
// _prepare_task_run_request on cfg (boto3 pointed at moto for the default
// VPC's subnets) and returns the task definition, the request and Prefect's
// default image.
const prefectPrepare = `
import base64, json, os
os.environ.update(AWS_ENDPOINT_URL=%q, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=%q)
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.dockerutils import get_prefect_image_name
from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker
cfg = ECSJobConfiguration.model_validate(json.loads(base64.b64decode(%q)))
# The ECS part of ECSJobConfiguration.prepare_for_flow_run (the base part ran in Go).
if cfg.prefect_api_key_secret_arn: cfg.env.pop("PREFECT_API_KEY", None)
if cfg.prefect_api_auth_string_secret_arn: cfg.env.pop("PREFECT_API_AUTH_STRING", None)
worker = ECSWorker(work_pool_name=%q)
run = FlowRun(id=%q, flow_id=%q, deployment_id=%q)
td = worker._prepare_task_definition(cfg, region=%q, flow_run=run)
req = worker._prepare_task_run_request(cfg, td, %q, True)
print(json.dumps({"td": td, "req": req, "image": get_prefect_image_name()}))
`

// TestPrepare_matchesPrefect checks that the task definition and RunTask
// request pushpool builds equal prefect-aws's for the same configuration.
// Legitimate differences, normalised away: env and tag order (Prefect keeps
// dict insertion order, pushpool sorts), and pushpool's own additions to
// RunTask (startedBy, clientToken, the pushpool.io/attempt tag) and to the
// registered task definition (the content-hash tag), which Start adds after
// these functions. One
// deliberate difference: with prefect_api_key_secret_arn set, prefect-aws
// still passes a PREFECT_API_KEY that the env job variable rendered into the
// container override as plain env; pushpool drops it (secretless), so it is
// removed from Prefect's request before comparing.
func TestPrepare_matchesPrefect(t *testing.T) {
	const tdARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_differential:1"
	for name, vars := range map[string]map[string]any{
		"default": {"cluster": "c1"},
		"secrets, logs and overrides": {"cluster": "c1", "image": "example.com/flows:1", "cpu": 512, "memory": 1024,
			"env":                        map[string]any{"PREFECT_API_KEY": "pnu_secret", "EXTRA": "x", "UNSET": nil},
			"labels":                     map[string]any{"team name": "data eng", "cost-center": "42"},
			"command":                    "python -m 'my flow' --x=1",
			"prefect_api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
			"configure_cloudwatch_logs":  true, "execution_role_arn": "arn:aws:iam::123456789012:role/exec",
			"cloudwatch_logs_options": map[string]any{"awslogs-group": "flows"}, "task_role_arn": "arn:aws:iam::123456789012:role/task",
			"auto_deregister_task_definition": true},
		"ec2":          {"cluster": "c1", "launch_type": "EC2", "container_name": "flow"},
		"fargate spot": {"launch_type": "FARGATE_SPOT", "family": "spot-family"},
		"capacity provider strategy": {"capacity_provider_strategy": []any{map[string]any{"capacityProvider": "FARGATE", "weight": 1, "base": 0}},
			"launch_type": "FARGATE"},
	} {
		t.Run(name, func(t *testing.T) {
			job := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), vars, dispatchtest.NewFlowRunID())
			data, err := json.Marshal(job.Configuration)
			if err != nil {
				t.Fatal(err)
			}
			out, err := localstack.RunPython(t.Context(), fmt.Sprintf(prefectPrepare, moto.URL, testRegion,
				base64.StdEncoding.EncodeToString(data), job.WorkPool, job.FlowRunID, job.FlowID, job.DeploymentID, testRegion, tdARN))
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				TD    map[string]any `json:"td"`
				Req   map[string]any `json:"req"`
				Image string         `json:"image"`
			}
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatalf("decode %s: %v", out, err)
			}

			c, err := parseJobConfig(job.Configuration)
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBackend(t)
			td, err := prepareTaskDefinition(c, runInfo{workPool: job.WorkPool, deploymentID: job.DeploymentID, flowID: job.FlowID,
				region: testRegion, defaultImage: want.Image})
			if err != nil {
				t.Fatal(err)
			}
			req, err := prepareRunTaskRequest(t.Context(), c, td, tdARN, true, &vpcSubnets{api: b.ec2Client(motoAWS())})
			if err != nil {
				t.Fatal(err)
			}
			if c.apiKeySecret != "" || c.authSecret != "" {
				dropSecretEnv(c, want.Req)
			}
			if c.apiKeySecret != "" && strings.Contains(dump(req), "pnu_secret") {
				t.Errorf("the API key travels as plain env although prefect_api_key_secret_arn is set: %s", dump(req))
			}
			for what, pair := range map[string][2]map[string]any{"task definition": {td, want.TD}, "RunTask request": {req, want.Req}} {
				got, exp := comparable(t, pair[0]), comparable(t, pair[1])
				if !reflect.DeepEqual(got, exp) {
					t.Errorf("%s differs from prefect-aws's:\n got  %s\n want %s", what, dump(got), dump(exp))
				}
			}
		})
	}
}

// comparable round-trips v through JSON and sorts the lists whose order
// pushpool and Prefect legitimately differ on (environment, tags, secrets).
func comparable(t *testing.T, v map[string]any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(x any) {
		switch m := x.(type) {
		case map[string]any:
			for k, e := range m {
				if l, ok := e.([]any); ok && (k == "environment" || k == "tags" || k == "secrets") {
					slices.SortFunc(l, func(a, b any) int { return strings.Compare(dump(a), dump(b)) })
				}
				walk(e)
			}
		case []any:
			for _, e := range m {
				walk(e)
			}
		}
	}
	walk(out)
	return out
}

func dump(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSpace(buf.String())
}

// dropSecretEnv removes the env variables c moves into secrets from every
// container override of req.
func dropSecretEnv(c *jobConfig, req map[string]any) {
	for _, o := range asList(asMap(req["overrides"])["containerOverrides"]) {
		co := asMap(o)
		if envs, ok := co["environment"].([]any); ok {
			co["environment"] = slices.DeleteFunc(envs, func(e any) bool { return c.secretEnv(asString(asMap(e)["name"])) })
		}
	}
}
