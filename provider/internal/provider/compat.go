package provider

// Compatibility with the prefecthq/prefect provider (v3.4.x): the Prefect
// Cloud scope attributes it has on every resource, and state upgraders that
// read the state it writes, so that a configuration and its state move to
// this provider with an empty plan.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Names of the prefecthq/prefect provider's Prefect Cloud scope attributes.
const (
	attrAccountID   = "account_id"
	attrWorkspaceID = "workspace_id"
)

// cloudScope is the account_id and workspace_id every resource of the
// prefecthq/prefect provider has. A self-hosted server has no accounts or
// workspaces, so both are always null here; they are accepted so that
// configurations and state written for that provider work unchanged.
// Resource models embed it.
type cloudScope struct {
	AccountID   types.String `tfsdk:"account_id"`
	WorkspaceID types.String `tfsdk:"workspace_id"`
}

// withCloudScope adds account_id and workspace_id to a resource's attributes.
func withCloudScope(attrs map[string]schema.Attribute) map[string]schema.Attribute {
	for _, name := range []string{attrAccountID, attrWorkspaceID} {
		attrs[name] = schema.StringAttribute{
			Optional:            true,
			MarkdownDescription: cloudScopeDescription(name),
			Validators:          []validator.String{cloudScopeValidator{}},
			PlanModifiers:       []planmodifier.String{cloudScopePlan{}},
		}
	}
	return attrs
}

// withDataCloudScope adds account_id and workspace_id to a data source's
// attributes.
func withDataCloudScope(attrs map[string]dschema.Attribute) map[string]dschema.Attribute {
	for _, name := range []string{attrAccountID, attrWorkspaceID} {
		attrs[name] = dschema.StringAttribute{
			Optional:            true,
			MarkdownDescription: cloudScopeDescription(name),
			Validators:          []validator.String{cloudScopeValidator{}},
		}
	}
	return attrs
}

// cloudScopeDescription documents account_id or workspace_id.
func cloudScopeDescription(name string) string {
	return fmt.Sprintf("Accepted for compatibility with the prefecthq/prefect provider, whose configurations for "+
		"Prefect Cloud set it; a self-hosted Prefect server has no %s, so it must be left unset (null).",
		map[string]string{attrAccountID: "accounts", attrWorkspaceID: "workspaces"}[name])
}

// cloudScopeProblem is the error detail for account_id or workspace_id set
// to a value.
func cloudScopeProblem(p path.Path, value string) string {
	return fmt.Sprintf("%s is set to %s, but this provider manages a self-hosted Prefect server, which has no "+
		"Prefect Cloud accounts or workspaces. Remove %s from the configuration (it is accepted only as null, so "+
		"that configurations written for the prefecthq/prefect provider work unchanged). To manage Prefect Cloud, "+
		"use the prefecthq/prefect provider.", p, value, p)
}

// cloudScopeValidator rejects a known account_id or workspace_id.
type cloudScopeValidator struct{}

func (cloudScopeValidator) Description(context.Context) string {
	return "must be null: a self-hosted Prefect server has no accounts or workspaces"
}

func (v cloudScopeValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (cloudScopeValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Unsupported "+req.Path.String(),
		cloudScopeProblem(req.Path, fmt.Sprintf("%q", req.ConfigValue.ValueString())))
}

// cloudScopePlan rejects an account_id or workspace_id known only after
// apply, which validation cannot see yet.
type cloudScopePlan struct{}

func (cloudScopePlan) Description(context.Context) string {
	return "Rejects a value known only after apply: the attribute must be null."
}

func (p cloudScopePlan) MarkdownDescription(ctx context.Context) string { return p.Description(ctx) }

func (cloudScopePlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.ConfigValue.IsUnknown() {
		resp.Diagnostics.AddAttributeError(req.Path, "Unsupported "+req.Path.String(),
			cloudScopeProblem(req.Path, "a value known only after apply"))
	}
}

// importID returns an import ID without the ",<workspace_id>" the
// prefecthq/prefect provider's import IDs may end in: id has parts
// comma-separated parts, and the workspace ID after them is accepted only
// when it is empty, as a self-hosted server has no workspaces. ok is false
// after adding an error about what (e.g. "work pool").
func importID(id string, parts int, what string, diags *diag.Diagnostics) (string, bool) {
	fields := strings.Split(id, ",")
	if len(fields) != parts+1 {
		return id, true // the resource's own parsing judges it
	}
	trimmed := strings.Join(fields[:parts], ",")
	if ws := strings.TrimSpace(fields[parts]); ws != "" {
		diags.AddError("Unable to import "+what,
			fmt.Sprintf("The import ID %q ends in the workspace ID %q, but this provider manages a self-hosted Prefect "+
				"server, which has no workspaces. Import with %q instead (a trailing comma with nothing after it is "+
				"accepted too).", id, ws, trimmed))
		return "", false
	}
	return trimmed, true
}

// priorState is a resource's state as written at an earlier schema version,
// decoded from its JSON.
type priorState struct {
	// attrs are the state's attributes; numbers are json.Number.
	attrs map[string]any
	// upstream reports whether the prefecthq/prefect provider wrote the
	// state: its states have account_id and workspace_id, which this
	// provider's states before they were added did not have.
	upstream bool
}

// emptyToNull sets each named string attribute that is "" to null. The
// prefecthq/prefect provider stores "" for optional strings the server has
// no value for, where this provider stores null.
func (s priorState) emptyToNull(names ...string) {
	for _, n := range names {
		if v, ok := s.attrs[n].(string); ok && v == "" {
			s.attrs[n] = nil
		}
	}
}

// zeroToNull sets each named number attribute that is 0 to null, for the
// numbers the prefecthq/prefect provider stores as 0 when unset.
func (s priorState) zeroToNull(names ...string) {
	for _, n := range names {
		if v, ok := s.attrs[n].(json.Number); ok {
			if f, err := v.Float64(); err == nil && f == 0 {
				s.attrs[n] = nil
			}
		}
	}
}

// stateUpgrades returns a StateUpgrader for each schema version below
// current. This provider continues the prefecthq/prefect provider's schema
// versions (its schema versions are above that provider's), so one upgrader
// reads both that provider's state and this provider's own earlier state of
// a version; upstream tells them apart. fix adjusts the attributes for the
// current schema (nil when nothing needs adjusting); afterwards attributes
// the current schema lacks are dropped and missing ones are null.
func stateUpgrades(current int64, typeName string, fix func(priorState, *diag.Diagnostics)) map[int64]resource.StateUpgrader {
	out := make(map[int64]resource.StateUpgrader, current)
	for v := int64(0); v < current; v++ {
		version := v
		out[version] = resource.StateUpgrader{
			StateUpgrader: func(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
				upgradeState(ctx, typeName, version, fix, req, resp)
			},
		}
	}
	return out
}

// upgradeState is the body of the upgraders stateUpgrades returns.
func upgradeState(ctx context.Context, typeName string, version int64, fix func(priorState, *diag.Diagnostics),
	req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	fail := func(detail string) {
		resp.Diagnostics.AddError(fmt.Sprintf("Unable to upgrade the state of a %s", typeName),
			fmt.Sprintf("The state was written at schema version %d. %s", version, detail))
	}
	if req.RawState == nil || len(req.RawState.JSON) == 0 {
		fail("It is in the flatmap format of Terraform 0.11 and earlier, which this provider cannot read: " +
			"refresh it with the provider that wrote it and Terraform 0.12 or later first.")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(req.RawState.JSON))
	dec.UseNumber()
	var prior priorState
	if err := dec.Decode(&prior.attrs); err != nil || prior.attrs == nil {
		fail(fmt.Sprintf("Its attributes are not a JSON object: %v.", err))
		return
	}
	_, prior.upstream = prior.attrs[attrAccountID]
	if fix != nil {
		fix(prior, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	doc, err := json.Marshal(prior.attrs)
	if err != nil {
		fail(err.Error())
		return
	}
	typ := resp.State.Schema.Type().TerraformType(ctx)
	raw := tfprotov6.RawState{JSON: doc}
	v, err := raw.UnmarshalWithOpts(typ, tfprotov6.UnmarshalOpts{
		ValueFromJSONOpts: tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true},
	})
	if err != nil {
		fail(fmt.Sprintf("Its attributes do not fit this provider's schema: %v. Remove the resource from the state "+
			"(terraform state rm) and import it instead.", err))
		return
	}
	resp.State.Raw = v
}
