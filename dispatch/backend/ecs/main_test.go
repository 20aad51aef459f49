package ecs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

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

// taskARN returns the task ARN of an infrastructure id.
func taskARN(t *testing.T, infraID string) string {
	t.Helper()
	id, err := ParseID(infraID)
	if err != nil {
		t.Fatal(err)
	}
	return id.TaskARN
}
