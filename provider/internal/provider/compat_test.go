package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// upgradeTestState runs the resource's upgrader of version on the prior
// state's JSON.
func upgradeTestState(t *testing.T, r resource.Resource, version int64, prior string) resource.UpgradeStateResponse {
	t.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sr)
	u, ok := r.(resource.ResourceWithUpgradeState).UpgradeState(ctx)[version]
	if !ok {
		t.Fatalf("no upgrader of version %d", version)
	}
	resp := resource.UpgradeStateResponse{State: tfsdk.State{Schema: sr.Schema}}
	var raw *tfprotov6.RawState
	if prior != "" {
		raw = &tfprotov6.RawState{JSON: []byte(prior)}
	}
	u.StateUpgrader(ctx, resource.UpgradeStateRequest{RawState: raw}, &resp)
	return resp
}

func TestStateUpgrades(t *testing.T) {
	null := types.StringNull()
	tests := []struct {
		name     string
		resource resource.Resource
		version  int64
		prior    string
		want     map[string]attr.Value
		warning  string
		err      string
	}{
		{
			name: "prefecthq/prefect cron schedule", resource: NewDeploymentScheduleResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"s","deployment_id":"d","active":true,"max_scheduled_runs":0,
				"parameters":"{}","slug":"","timezone":"UTC","interval":0,"anchor_date":"","cron":"0 6 * * *","day_or":true,"rrule":""}`,
			want: map[string]attr.Value{"slug": null, "interval": types.Float64Null(), "anchor_date": null, "rrule": null,
				"max_scheduled_runs": types.Int64Null(), "day_or": types.BoolValue(true), "timezone": types.StringValue("UTC"),
				"cron": types.StringValue("0 6 * * *"), "account_id": null},
		},
		{
			name: "prefecthq/prefect interval schedule", resource: NewDeploymentScheduleResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"s","deployment_id":"d","active":false,"max_scheduled_runs":10,
				"parameters":"{}","slug":"hourly","timezone":"","interval":3600,"anchor_date":"2024-01-01T00:00:00Z","cron":"","day_or":false,"rrule":""}`,
			want: map[string]attr.Value{"slug": types.StringValue("hourly"), "interval": types.Float64Value(3600),
				"anchor_date": types.StringValue("2024-01-01T00:00:00Z"), "cron": null, "day_or": types.BoolNull(), "timezone": null,
				"max_scheduled_runs": types.Int64Value(10)},
		},
		{
			name: "this provider's earlier schedule keeps a configured empty slug", resource: NewDeploymentScheduleResource(),
			prior: `{"id":"s","deployment_id":"d","active":true,"parameters":"{}","slug":"","cron":"0 6 * * *","day_or":true}`,
			want:  map[string]attr.Value{"slug": types.StringValue(""), "account_id": null, "interval": types.Float64Null()},
		},
		{
			name: "prefecthq/prefect deployment", resource: NewDeploymentResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"x","name":"prod","flow_id":"f","description":"","path":"",
				"version":"1.0","entrypoint":"","work_pool_name":"","work_queue_name":"","storage_document_id":"00000000-0000-0000-0000-000000000000",
				"global_concurrency_limit_id":"0b5c2b7e-1111-4e4e-8f8f-000000000001","tags":["a"],"pull_steps":[]}`,
			want: map[string]attr.Value{"description": null, "path": null, "version": types.StringValue("1.0"), "entrypoint": null,
				"work_pool_name": null, "work_queue_name": null, "storage_document_id": null,
				"global_concurrency_limit_id": types.StringValue("0b5c2b7e-1111-4e4e-8f8f-000000000001")},
		},
		{
			name: "prefecthq/prefect deployment without a global concurrency limit", resource: NewDeploymentResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"x","name":"prod","flow_id":"f","global_concurrency_limit_id":"",
				"tags":[],"pull_steps":[]}`,
			want: map[string]attr.Value{"global_concurrency_limit_id": null},
		},
		{
			name: "prefecthq/prefect work queue", resource: NewWorkQueueResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"q","name":"q","work_pool_name":"p","description":"","priority":1}`,
			want:  map[string]attr.Value{"description": null, "priority": types.Int64Value(1)},
		},
		{
			name: "prefecthq/prefect variable of schema version 0", resource: NewVariableResource(),
			prior: `{"account_id":null,"workspace_id":null,"id":"v","name":"v","value":"old","tags":["t"]}`,
			want:  map[string]attr.Value{"value": types.DynamicValue(types.StringValue("old"))},
		},
		{
			name: "prefecthq/prefect variable of schema version 1", resource: NewVariableResource(), version: 1,
			prior: `{"account_id":null,"workspace_id":null,"id":"v","name":"v","value":{"value":true,"type":"bool"},"tags":[]}`,
			want:  map[string]attr.Value{"value": types.DynamicValue(types.BoolValue(true))},
		},
		{
			name: "this provider's earlier variable", resource: NewVariableResource(),
			prior: `{"id":"v","name":"v","value":{"value":"x","type":"string"},"tags":[]}`,
			want:  map[string]attr.Value{"value": types.DynamicValue(types.StringValue("x")), "workspace_id": null},
		},
		{
			name: "flatmap state", resource: NewFlowResource(),
			err: "flatmap format",
		},
		{
			name: "attributes of the wrong type", resource: NewFlowResource(),
			prior: `{"id":"f","name":["not","a","string"]}`,
			err:   "terraform state rm",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := upgradeTestState(t, tt.resource, tt.version, tt.prior)
			if tt.err != "" {
				if !resp.Diagnostics.HasError() || !strings.Contains(resp.Diagnostics[0].Detail(), tt.err) {
					t.Fatalf("diagnostics %v, want an error containing %q", resp.Diagnostics, tt.err)
				}
				return
			}
			if resp.Diagnostics.HasError() {
				t.Fatal(resp.Diagnostics)
			}
			if tt.warning != "" && (resp.Diagnostics.WarningsCount() != 1 || !strings.Contains(resp.Diagnostics[0].Detail(), tt.warning)) {
				t.Errorf("diagnostics %v, want a warning containing %q", resp.Diagnostics, tt.warning)
			}
			if tt.warning == "" && len(resp.Diagnostics) > 0 {
				t.Errorf("unexpected diagnostics %v", resp.Diagnostics)
			}
			for name, want := range tt.want {
				var got attr.Value
				switch want.(type) {
				case types.String:
					var v types.String
					resp.Diagnostics.Append(resp.State.GetAttribute(context.Background(), path.Root(name), &v)...)
					got = v
				case types.Float64:
					var v types.Float64
					resp.Diagnostics.Append(resp.State.GetAttribute(context.Background(), path.Root(name), &v)...)
					got = v
				case types.Int64:
					var v types.Int64
					resp.Diagnostics.Append(resp.State.GetAttribute(context.Background(), path.Root(name), &v)...)
					got = v
				case types.Bool:
					var v types.Bool
					resp.Diagnostics.Append(resp.State.GetAttribute(context.Background(), path.Root(name), &v)...)
					got = v
				case types.Dynamic:
					var v types.Dynamic
					resp.Diagnostics.Append(resp.State.GetAttribute(context.Background(), path.Root(name), &v)...)
					got = v
				}
				if resp.Diagnostics.HasError() {
					t.Fatal(resp.Diagnostics)
				}
				if !want.Equal(got) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestCloudScopeValidator(t *testing.T) {
	tests := []struct {
		name  string
		value types.String
		err   bool
	}{
		{"null", types.StringNull(), false},
		{"unknown", types.StringUnknown(), false},
		{"a value", types.StringValue("9b6c1c1e-0000-4000-8000-000000000000"), true},
		{"empty", types.StringValue(""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validator.StringRequest{Path: path.Root(attrAccountID), ConfigValue: tt.value}
			var resp validator.StringResponse
			cloudScopeValidator{}.ValidateString(context.Background(), req, &resp)
			if resp.Diagnostics.HasError() != tt.err {
				t.Fatalf("diagnostics %v, want error %v", resp.Diagnostics, tt.err)
			}
			if tt.err && !strings.Contains(resp.Diagnostics[0].Detail(), "Remove account_id") {
				t.Errorf("detail %q does not name the fix", resp.Diagnostics[0].Detail())
			}
		})
	}
}

func TestImportID(t *testing.T) {
	tests := []struct {
		id    string
		parts int
		want  string
		err   bool
	}{
		{"pool", 1, "pool", false},
		{"pool,", 1, "pool", false},
		{"pool, ", 1, "pool", false},
		{"pool,9b6c1c1e-0000-4000-8000-000000000000", 1, "", true},
		{"pool,queue", 2, "pool,queue", false},
		{"pool,queue,", 2, "pool,queue", false},
		{"pool,queue,ws", 2, "", true},
		{"a,b,c,d", 1, "a,b,c,d", false}, // left to the resource's own parsing
	}
	for _, tt := range tests {
		var diags diag.Diagnostics
		got, ok := importID(tt.id, tt.parts, "thing", &diags)
		if ok == tt.err || got != tt.want || diags.HasError() != tt.err {
			t.Errorf("importID(%q, %d) = %q, %v (%v); want %q, error %v", tt.id, tt.parts, got, ok, diags, tt.want, tt.err)
		}
	}
}

func TestCloudScopePlan(t *testing.T) {
	for _, v := range []types.String{types.StringNull(), types.StringUnknown()} {
		var resp planmodifier.StringResponse
		cloudScopePlan{}.PlanModifyString(context.Background(),
			planmodifier.StringRequest{Path: path.Root(attrWorkspaceID), ConfigValue: v}, &resp)
		if resp.Diagnostics.HasError() != v.IsUnknown() {
			t.Errorf("config %v: diagnostics %v", v, resp.Diagnostics)
		}
	}
}
