package provider

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

func TestAutomation_eventWithin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		posture string
		within  *float64
		want    float64
	}{
		{postureReactive, nil, 0},
		{postureReactive, ptr(0.0), 0},
		{postureReactive, ptr(30.0), 30},
		{postureProactive, nil, 10},
		{postureProactive, ptr(0.0), 10},
		{postureProactive, ptr(90.0), 90},
	}
	for _, tt := range tests {
		if got := eventWithin(tt.posture, tt.within); got != tt.want {
			t.Errorf("eventWithin(%s, %v) = %v, want %v", tt.posture, tt.within, got, tt.want)
		}
	}
}

func TestAutomation_requireValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      types.Dynamic
		want    any
		wantErr bool
	}{
		{types.DynamicValue(types.StringValue("any")), "any", false},
		{types.DynamicValue(types.StringValue("all")), "all", false},
		{types.DynamicValue(types.StringValue("2")), int64(2), false},
		{types.DynamicValue(jsonattr.ToAttr(json.Number("2"))), int64(2), false},
		{types.DynamicValue(jsonattr.ToAttr(json.Number("1.5"))), nil, true},
		{types.DynamicValue(types.StringValue("most")), nil, true},
	}
	for _, tt := range tests {
		got, err := requireValue(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("requireValue(%v) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	prior := types.DynamicValue(types.StringValue("2"))
	if got := keepRequire(prior, json.Number("2")); !got.Equal(prior) {
		t.Errorf("keepRequire(\"2\", 2) = %v, want the prior \"2\"", got)
	}
	if got := keepRequire(prior, json.Number("1")); got.Equal(prior) {
		t.Errorf("keepRequire(\"2\", 1) kept the prior value; want the server's 1")
	}
}

func TestAutomation_actionsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	planned := []AutomationActionModel{
		action("run-deployment", map[string]string{
			"source": "selected", "deployment_id": "53301448-1EE2-4A48-A490-91CF73F987F0",
			"parameters": `{ "b": "{{ event.id }}", "a": 1.0 }`, "job_variables": "{}",
		}),
		action("call-webhook", map[string]string{
			"block_document_id": "00000000-0000-4000-8000-000000000002", "payload": `{ "text": "{{ event.event }}" }`,
			"parameters": "{}", "job_variables": "{}",
		}),
		action("do-nothing", map[string]string{"parameters": "{}", "job_variables": "{}"}),
	}
	var diags diag.Diagnostics
	sent := actionsToAPI(ctx, planned, path.Root("actions"), &diags)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if _, ok := sent[1]["parameters"]; ok || len(sent[2]) != 1 {
		t.Errorf("sent %v; want only the attributes each type uses", sent)
	}
	// What the server answers: UUIDs in lower case, numbers re-spelled, null job variables.
	server := []map[string]any{
		{"type": "run-deployment", "source": "selected", "deployment_id": "53301448-1ee2-4a48-a490-91cf73f987f0",
			"parameters": map[string]any{"a": json.Number("1"), "b": "{{ event.id }}"}, "job_variables": nil, "schedule_after": json.Number("0.0")},
		{"type": "call-webhook", "block_document_id": "00000000-0000-4000-8000-000000000002", "payload": `{"text":"{{ event.event }}"}`},
		{"type": "do-nothing"},
	}
	got := actionsFromAPI(ctx, planned, server, &diags)
	if diags.HasError() {
		t.Fatal(diags)
	}
	for i := range planned {
		if !equalAction(got[i], planned[i]) {
			t.Errorf("action %d after the round trip = %+v, want the planned %+v", i, got[i], planned[i])
		}
	}
	// An import has no plan: the server's values, with {} for absent JSON.
	imported := actionsFromAPI(ctx, nil, server, &diags)
	if v := imported[0].DeploymentID.ValueString(); v != "53301448-1ee2-4a48-a490-91cf73f987f0" {
		t.Errorf("imported deployment_id = %q", v)
	}
	if v := imported[2].Parameters.ValueString(); v != "{}" || !imported[2].Source.IsNull() {
		t.Errorf("imported do-nothing = %+v; want parameters {} and no source", imported[2])
	}
}

func TestAutomation_validateActions(t *testing.T) {
	t.Parallel()
	dep := "00000000-0000-4000-8000-000000000001"
	tests := map[string]struct {
		action AutomationActionModel
		want   []string // "attribute: text", in order
	}{
		"run-deployment selected":          {action("run-deployment", map[string]string{"deployment_id": dep}), nil},
		"run-deployment inferred":          {action("run-deployment", map[string]string{"source": "inferred"}), nil},
		"run-deployment without a target":  {action("run-deployment", nil), []string{"deployment_id: needs deployment_id"}},
		"inferred with a target":           {action("resume-work-pool", map[string]string{"source": "inferred", "work_pool_id": dep}), []string{"work_pool_id: must not be set"}},
		"unused attribute":                 {action("cancel-flow-run", map[string]string{"state": "CANCELLED"}), []string{"state: does not use state"}},
		"{} parameters on any action":      {action("do-nothing", map[string]string{"parameters": "{ }"}), nil},
		"other parameters":                 {action("do-nothing", map[string]string{"parameters": `{"a":1}`}), []string{"parameters: does not use parameters"}},
		"notification without block, body": {action("send-notification", nil), []string{"block_document_id: needs block_document_id", "body: needs body"}},
		"unknown target counts as set":     {action("pause-deployment", map[string]string{"deployment_id": "?"}), nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var diags diag.Diagnostics
			validateAutomationActions([]AutomationActionModel{tt.action}, path.Root("actions"), &diags)
			if len(diags) != len(tt.want) {
				t.Fatalf("diagnostics = %v, want %d: %v", diags, len(tt.want), tt.want)
			}
			for i, d := range diags {
				attr, text, _ := strings.Cut(tt.want[i], ": ")
				withPath, ok := d.(diag.DiagnosticWithPath)
				if !ok || !withPath.Path().Equal(path.Root("actions").AtListIndex(0).AtName(attr)) || !strings.Contains(d.Detail(), text) {
					t.Errorf("diagnostic %d = %v: %s; want at %s, saying %q", i, d.Summary(), d.Detail(), attr, text)
				}
			}
		})
	}
}

func TestAutomation_schemasAreValid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rs resource.SchemaResponse
	NewAutomationResource().Schema(ctx, resource.SchemaRequest{}, &rs)
	if d := rs.Schema.ValidateImplementation(ctx); d.HasError() {
		t.Fatalf("resource schema: %v", d)
	}
	var ds datasource.SchemaResponse
	NewAutomationDataSource().Schema(ctx, datasource.SchemaRequest{}, &ds)
	if d := ds.Schema.ValidateImplementation(ctx); d.HasError() {
		t.Fatalf("data source schema: %v", d)
	}
	if len(ds.Schema.Attributes) != len(rs.Schema.Attributes) || !ds.Schema.Attributes["id"].IsRequired() {
		t.Errorf("data source attributes = %d, resource's = %d; want the same, with id required",
			len(ds.Schema.Attributes), len(rs.Schema.Attributes))
	}
	for _, typ := range automationActionTypes {
		if _, ok := automationActionSpecs[typ]; !ok {
			t.Errorf("action type %q has no rules in automationActionSpecs", typ)
		}
	}
	var m AutomationResourceModel
	m.fromAPI(ctx, prefect.Automation{ID: "x", Trigger: map[string]any{"type": "event", "posture": "Reactive"}}, new(diag.Diagnostics))
	if m.Trigger.Event == nil || !m.Trigger.Event.Within.IsNull() {
		t.Errorf("an event trigger without within read as %+v; want within null", m.Trigger.Event)
	}
}

// action builds a configured action; "?" is an unknown value, and attributes
// not given are null.
func action(typ string, values map[string]string) AutomationActionModel {
	a := AutomationActionModel{Type: types.StringValue(typ), Emails: types.ListNull(types.StringType)}
	for name, v := range a.stringFields() {
		*v = types.StringNull()
		switch s, ok := values[name]; {
		case ok && s == "?":
			*v = types.StringUnknown()
		case ok:
			*v = types.StringValue(s)
		}
	}
	return a
}

func equalAction(a, b AutomationActionModel) bool {
	af, bf := a.stringFields(), b.stringFields()
	for name := range af {
		if !af[name].Equal(*bf[name]) {
			return false
		}
	}
	return a.Type.Equal(b.Type) && a.Emails.Equal(b.Emails)
}
