package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure    = (*VariableResource)(nil)
	_ resource.ResourceWithImportState  = (*VariableResource)(nil)
	_ resource.ResourceWithModifyPlan   = (*VariableResource)(nil)
	_ resource.ResourceWithUpgradeState = (*VariableResource)(nil)
)

// variableSchemaVersion is one above the prefecthq/prefect provider's (1).
const variableSchemaVersion = 2

// VariableResource manages a Prefect variable (prefect_variable).
type VariableResource struct {
	client *prefect.Client
	reads  *refreshReads
}

// VariableResourceModel is the state of a prefect_variable.
type VariableResourceModel struct {
	cloudScope
	ID      types.String  `tfsdk:"id"`
	Created types.String  `tfsdk:"created"`
	Updated types.String  `tfsdk:"updated"`
	Name    types.String  `tfsdk:"name"`
	Value   types.Dynamic `tfsdk:"value"`
	Tags    types.Set     `tfsdk:"tags"`
}

// NewVariableResource returns the prefect_variable resource.
func NewVariableResource() resource.Resource { return &VariableResource{} }

// Metadata names the resource.
func (r *VariableResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_variable"
}

// Schema describes the resource.
func (r *VariableResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: variableSchemaVersion,
		MarkdownDescription: "A variable: a named JSON value flows and job templates read (`{{ prefect.variables.name }}`). " +
			"Not for secrets; use a block. Import with the variable's ID, its name, or `name/<name>`.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Variable ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the variable. A change renames it in place.",
			},
			"value": schema.DynamicAttribute{
				Required: true,
				MarkdownDescription: "Value of the variable: a string, number, bool, list or object, as any JSON value. " +
					"Compared as JSON, so `1` and `1.0`, or a list and a tuple with the same items, are the same value.",
				PlanModifiers: []planmodifier.Dynamic{jsonattr.DynamicPlan()},
			},
			"tags": schema.SetAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				Computed:            true,
				Default:             setdefault.StaticValue(emptyStringSet()),
				MarkdownDescription: "Tags of the variable. Defaults to none.",
			},
		}),
	}
}

// Configure receives the provider's client.
func (r *VariableResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
	r.reads = refreshReadsFrom(req.ProviderData)
}

// Create creates the variable.
func (r *VariableResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan VariableResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in, ok := plan.toAPI(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	v, err := r.client.CreateVariable(ctx, in)
	if err != nil {
		addAPIError(&resp.Diagnostics, "create", variableName(in.Name), err)
		return
	}
	plan.fromAPI(ctx, v, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the variable by id; one deleted outside Terraform leaves the state.
func (r *VariableResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state VariableResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	v, err := r.reads.variable(ctx, r.client, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", variableName(state.Name.ValueString()), err)
		return
	}
	state.fromAPI(ctx, v, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update sets the name, value and tags.
func (r *VariableResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan VariableResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in, ok := plan.toAPI(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	id := plan.ID.ValueString()
	if err := r.client.UpdateVariableByID(ctx, id, in); err != nil {
		addAPIError(&resp.Diagnostics, "update", variableName(in.Name), err)
		return
	}
	v, err := r.client.ReadVariableByID(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", variableName(in.Name), err)
		return
	}
	plan.fromAPI(ctx, v, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the variable; one already gone is fine.
func (r *VariableResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state VariableResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteVariableByID(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", variableName(state.Name.ValueString()), err)
	}
}

// ImportState imports a variable by ID, by name, or by "name/<name>" as the
// prefecthq/prefect provider accepts.
func (r *VariableResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "variable", &resp.Diagnostics)
	if !ok {
		return
	}
	if _, err := uuid.Parse(id); err == nil {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
		return
	}
	if !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	name := strings.TrimPrefix(id, "name/")
	v, err := r.client.ReadVariable(ctx, name)
	if err != nil {
		addAPIError(&resp.Diagnostics, "import", variableName(name), err)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), v.ID)...)
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 1, and version 0, whose value was a string) and of earlier releases
// of this provider (version 0, whose value was already dynamic).
func (r *VariableResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(variableSchemaVersion, "prefect_variable", func(s priorState, _ *diag.Diagnostics) {
		// A dynamic value is stored as {"value": ..., "type": ...}; the
		// string value of version 0 of the prefecthq/prefect provider is not.
		if v, ok := s.attrs["value"].(string); ok {
			s.attrs["value"] = map[string]any{"value": v, "type": "string"}
		}
	})
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *VariableResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// toAPI converts the planned variable; ok is false after adding a diagnostic.
func (m VariableResourceModel) toAPI(ctx context.Context, diags *diag.Diagnostics) (prefect.Variable, bool) {
	value, err := jsonattr.FromAttr(m.Value)
	if err != nil {
		diags.AddAttributeError(path.Root("value"), "Invalid variable value",
			fmt.Sprintf("The value of %s cannot be stored as JSON: %s.", variableName(m.Name.ValueString()), err))
		return prefect.Variable{}, false
	}
	tags := setStrings(ctx, m.Tags, diags)
	return prefect.Variable{Name: m.Name.ValueString(), Value: value, Tags: tags}, !diags.HasError()
}

// fromAPI copies the server's variable into the model, keeping the planned
// form of an equal value.
func (m *VariableResourceModel) fromAPI(ctx context.Context, v prefect.Variable, diags *diag.Diagnostics) {
	m.ID = types.StringValue(v.ID)
	m.Created = timePtr(v.Created)
	m.Updated = timePtr(v.Updated)
	m.Name = types.StringValue(v.Name)
	m.Value = jsonattr.KeepDynamic(m.Value, v.Value)
	m.Tags = stringSet(ctx, v.Tags, diags)
}

func variableName(name string) string { return fmt.Sprintf("variable %q", name) }
