package pooltype_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/pushpool/pushpool/dispatch/pooltype"
	"github.com/pushpool/pushpool/internal/localstack"
)

// TestDefaultBaseJobTemplate_matchesPrefect compares each embedded template
// with the one the pinned Prefect integration's worker gives.
func TestDefaultBaseJobTemplate_matchesPrefect(t *testing.T) {
	workers := map[pooltype.Family]string{
		pooltype.Process:  "prefect.workers.process:ProcessWorker",
		pooltype.ECS:      "prefect_aws.workers:ECSWorker",
		pooltype.CloudRun: "prefect_gcp.workers.cloud_run_v2:CloudRunWorkerV2",
		pooltype.ACI:      "prefect_azure.workers.container_instance:AzureContainerWorker",
	}
	for _, f := range pooltype.Families() {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			want, err := localstack.WorkerDefaultTemplate(t.Context(), workers[f])
			if err != nil {
				t.Fatal(err)
			}
			if got := f.DefaultBaseJobTemplate(); !reflect.DeepEqual(got, want) {
				t.Errorf("the embedded %s template differs from %s's; regenerate dispatch/pooltype/templates/%s.json", f, workers[f], f)
			}
		})
	}
}

func TestOf(t *testing.T) {
	tests := []struct {
		poolType string
		want     pooltype.Family
		ok       bool
	}{
		{"process", pooltype.Process, true},
		{"process:push", "", false},
		{"ecs", pooltype.ECS, true},
		{"ecs:push", pooltype.ECS, true},
		{"cloud-run-v2:push", pooltype.CloudRun, true},
		{"azure-container-instance", pooltype.ACI, true},
		{"cloud-run", "", false},
		{"kubernetes", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := pooltype.Of(tt.poolType)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Of(%q) = %q, %v; want %q, %v", tt.poolType, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAll(t *testing.T) {
	want := []string{"azure-container-instance", "azure-container-instance:push", "cloud-run-v2", "cloud-run-v2:push", "ecs", "ecs:push", "process"}
	if got := pooltype.All(); !slices.Equal(got, want) {
		t.Errorf("All() = %v; want %v", got, want)
	}
	if _, ok := pooltype.DefaultBaseJobTemplate("kubernetes"); ok {
		t.Error("DefaultBaseJobTemplate(kubernetes) found a template")
	}
	a, _ := pooltype.DefaultBaseJobTemplate("ecs:push")
	a["job_configuration"] = nil
	if b, _ := pooltype.DefaultBaseJobTemplate("ecs"); b["job_configuration"] == nil {
		t.Error("DefaultBaseJobTemplate returned a shared map: a caller's change reached the next call")
	}
}
