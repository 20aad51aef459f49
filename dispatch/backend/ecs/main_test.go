package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/dispatch"
	"github.com/pushpool/pushpool/dispatch/dispatchtest"
	"github.com/pushpool/pushpool/internal/localstack"
)

// The package's tests share one Prefect server and one moto server. Tests
// that inject faults into moto do not run in parallel.
var (
	srv  *localstack.Prefect
	moto *localstack.Moto
)

const testRegion = "us-east-1"

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	mt, err := localstack.StartMoto(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the ECS backend's tests need a moto server and it did not start: %v\n", err)
		os.Exit(1)
	}
	moto = mt
	fmt.Printf("pushpool-env: moto server at %s\n", moto.URL)
	code := localstack.RunTestsWithPrefect(m, localstack.PrefectOptions{}, func(p *localstack.Prefect) { srv = p })
	if err := moto.Stop(); err != nil && code == 0 {
		fmt.Fprintf(os.Stderr, "stop the moto server: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// motoAWS is an AWS configuration for moto's default account.
func motoAWS() aws.Config {
	return aws.Config{Region: testRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}

// newTestBackend returns a Backend on moto with short backoffs.
func newTestBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := New(t.Context(), Config{
		AWS: motoAWS(), Endpoint: moto.URL, DefaultImage: "prefecthq/prefect:3.9.1-python3.11",
		MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond, RegisterBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// motoECS is a plain ECS client on moto, for test setup and checks.
func motoECS() *ecs.Client {
	return ecs.NewFromConfig(motoAWS(), func(o *ecs.Options) { o.BaseEndpoint = aws.String(moto.URL) })
}

// createCluster creates a cluster in moto named after the test.
func createCluster(t *testing.T) string {
	t.Helper()
	name := "pushpool-" + strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	if len(name) > 200 {
		name = name[:200]
	}
	if _, err := motoECS().CreateCluster(t.Context(), &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatalf("create cluster %s in moto: %v", name, err)
	}
	return name
}

// newJob renders a job of a fresh flow run from the default template with
// vars, with a fresh attempt, as the engine hands it to Start.
func newJob(t testing.TB, vars map[string]any) dispatch.Job {
	t.Helper()
	job := dispatchtest.RenderJob(t, PoolType, DefaultBaseJobTemplate(), vars, dispatchtest.NewFlowRunID())
	job.Attempt = dispatchtest.NewAttempt(job.FlowRunID)
	return job
}

// tasksOfFlowRun returns the ARNs of every task moto holds, in any status
// and cluster, of any attempt of the flow run: their startedBy, the
// attempt's Token, begins with the flow run id.
func tasksOfFlowRun(t testing.TB, flowRunID string) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, moto.URL+"/_pushpool/tasks?startedByPrefix="+url.QueryEscape(flowRunID), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("list the tasks of flow run %s in moto: %v", flowRunID, err)
	}
	defer resp.Body.Close()
	var out struct {
		TaskArns []string `json:"taskArns"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list the tasks of flow run %s in moto: HTTP %d, %v", flowRunID, resp.StatusCode, err)
	}
	return out.TaskArns
}

// taskARN returns the task ARN of an infrastructure id.
func taskARN(t *testing.T, infraID string) string {
	t.Helper()
	id, err := ParseID(infraID)
	if err != nil {
		t.Fatal(err)
	}
	return id.TaskARN
}
