package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	ecsbackend "github.com/pushpool/pushpool/dispatch/backend/ecs"
	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/internal/localstack"
)

// TestRun_dispatchOnceOnECS is the command on an ECS pool made from the
// default template: the due run becomes a task in moto (reached through
// AWS_ENDPOINT_URL), recorded in Prefect's pid format, and render shows the
// job with the secret redacted.
func TestRun_dispatchOnceOnECS(t *testing.T) {
	// The AWS SDK's default chain reads credentials from the process
	// environment, so this test sets it and cannot run in parallel.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	moto, err := localstack.StartMoto(t.Context())
	if err != nil {
		t.Fatalf("the ECS command test needs a moto server: %v", err)
	}
	t.Cleanup(func() { moto.Stop() })
	t.Setenv("AWS_ENDPOINT_URL", moto.URL)
	ctx := t.Context()
	ecsClient := ecs.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
		func(o *ecs.Options) { o.BaseEndpoint = aws.String(moto.URL) })
	if _, err := ecsClient.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("pushpool-cli")}); err != nil {
		t.Fatalf("create the cluster in moto: %v", err)
	}

	api, err := prefect.New(prefect.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	pool := "ecs-cli-" + time.Now().Format("150405.000000")
	if _, err := api.CreateWorkPool(ctx, prefect.WorkPoolCreate{Name: pool, Type: ecsbackend.PoolType, BaseJobTemplate: ecsbackend.DefaultBaseJobTemplate()}); err != nil {
		t.Fatal(err)
	}
	flow, err := api.CreateFlow(ctx, "ecs-cli", nil)
	if err != nil {
		t.Fatal(err)
	}
	entry := "flows/hello.py:hello"
	dep, err := api.CreateDeployment(ctx, prefect.DeploymentCreate{Name: pool, FlowID: flow.ID, WorkPoolName: pool, Entrypoint: &entry,
		JobVariables: map[string]any{"cluster": "pushpool-cli", "env": map[string]any{"DB_PASSWORD": "hunter2-hunter2"}}})
	if err != nil {
		t.Fatal(err)
	}
	run := newRun(t, api, dep)

	env := map[string]string{"PREFECT_API_URL": srv.URL, "AWS_ENDPOINT_URL": moto.URL}
	code, out, stderr := invoke(t, ctx, env, "dispatch-once", "--pool", pool, "--output", "json")
	if code != exitOK {
		t.Fatalf("dispatch-once on an ECS pool: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	var summary struct {
		Runs []struct {
			FlowRunID        string `json:"flow_run_id"`
			Outcome          string `json:"outcome"`
			InfrastructureID string `json:"infrastructure_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil || len(summary.Runs) != 1 || summary.Runs[0].Outcome != "submitted" {
		t.Fatalf("dispatch-once summary = %s (%v); want the run submitted", out, err)
	}
	pid := summary.Runs[0].InfrastructureID
	if !regexp.MustCompile(`^pushpool-cli::arn:aws:ecs:us-east-1:\d{12}:task/`).MatchString(pid) {
		t.Errorf("infrastructure id %q is not in Prefect's <cluster>::<task ARN> format", pid)
	}
	// The task is started by the run's attempt, which the run's labels name.
	claimed, err := api.ReadFlowRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprintf("%s-%v", run.ID, claimed.Labels["pushpool.io/attempt"])
	tasks, err := ecsClient.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("pushpool-cli"), StartedBy: aws.String(token)})
	if err != nil || len(tasks.TaskArns) != 1 || !strings.HasSuffix(pid, tasks.TaskArns[0]) {
		t.Errorf("moto holds tasks %v (%v) started by attempt %s; want exactly the recorded one", tasks.TaskArns, err, token)
	}

	code, out, stderr = invoke(t, ctx, env, "render", "--flow-run", run.ID)
	if code != exitOK {
		t.Fatalf("render: exit %d, %s", code, stderr)
	}
	if strings.Contains(out, "hunter2-hunter2") || !strings.Contains(out, "task_definition") {
		t.Errorf("render of an ECS run shows the secret or no task definition:\n%s", out)
	}
}
