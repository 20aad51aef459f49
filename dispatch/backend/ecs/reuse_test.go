package ecs

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/pushpool/pushpool/internal/localstack"
)

// TestBackend_Start_reusesTaskDefinition starts runs of one deployment
// through two Backends that share no memory (as two dispatcher processes):
// they use one task definition revision; a changed image registers another.
func TestBackend_Start_reusesTaskDefinition(t *testing.T) {
	cluster := createCluster(t)
	job := func(vars map[string]any) func(*testing.T) string {
		return func(t *testing.T) string {
			b := newTestBackend(t)
			j := newJob(t, vars)
			j.WorkPool = "reuse-" + cluster
			id, err := b.Start(t.Context(), j)
			if err != nil {
				t.Fatal(err)
			}
			return taskDefinitionOf(t, id)
		}
	}
	base := map[string]any{"cluster": cluster}
	first, second := job(base)(t), job(base)(t)
	if first != second {
		t.Errorf("two dispatchers registered %s and %s for the same configuration, want one revision", first, second)
	}
	changed := job(map[string]any{"cluster": cluster, "image": "example.com/flows:2"})(t)
	if changed == first {
		t.Errorf("a changed image reused task definition %s, want a new revision", first)
	}
	again := job(map[string]any{"cluster": cluster, "image": "example.com/flows:2"})(t)
	if again != changed {
		t.Errorf("the changed configuration registered %s and then %s, want one revision", changed, again)
	}
	list, err := motoECS().ListTaskDefinitions(t.Context(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(familyOf(first))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskDefinitionArns) != 2 {
		t.Errorf("family %s has revisions %v, want 2", familyOf(first), list.TaskDefinitionArns)
	}
}

// TestBackend_Start_retriesConcurrentRevision checks that "Too many
// concurrent attempts" from RegisterTaskDefinition is retried.
func TestBackend_Start_retriesConcurrentRevision(t *testing.T) {
	cluster := createCluster(t)
	if err := moto.InjectFault(t.Context(), localstack.MotoFault{Action: "RegisterTaskDefinition", Times: 2, Type: "ClientException",
		Message: "Too many concurrent attempts to create a new revision of the specified family."}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { moto.ClearFaults(context.Background()) })
	j := newJob(t, map[string]any{"cluster": cluster, "family": "concurrent-" + cluster})
	if _, err := newTestBackend(t).Start(t.Context(), j); err != nil {
		t.Fatalf("Start after two concurrent-revision refusals: %v", err)
	}
}

func taskDefinitionOf(t *testing.T, infraID string) string {
	t.Helper()
	id, err := ParseID(infraID)
	if err != nil {
		t.Fatal(err)
	}
	out, err := motoECS().DescribeTasks(t.Context(), &ecs.DescribeTasksInput{Cluster: aws.String(id.Cluster), Tasks: []string{id.TaskARN}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe task %s: %v %v", id.TaskARN, out, err)
	}
	return aws.ToString(out.Tasks[0].TaskDefinitionArn)
}

func familyOf(arn string) string {
	_, tail, _ := strings.Cut(arn, ":task-definition/")
	family, _, _ := strings.Cut(tail, ":")
	return family
}
