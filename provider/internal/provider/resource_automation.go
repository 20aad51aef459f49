package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

var (
	_ resource.ResourceWithConfigure      = (*AutomationResource)(nil)
	_ resource.ResourceWithImportState    = (*AutomationResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*AutomationResource)(nil)
	_ resource.ResourceWithValidateConfig = (*AutomationResource)(nil)
	_ resource.ResourceWithUpgradeState   = (*AutomationResource)(nil)
)

// automationSchemaVersion is one above the prefecthq/prefect provider's (0).
const automationSchemaVersion = 1

// AutomationResource manages an automation (prefect_automation): a trigger
// on events and the actions it runs. The model and its conversions are in
// automation_model.go.
type AutomationResource struct {
	client *prefect.Client
}

// NewAutomationResource returns the prefect_automation resource.
func NewAutomationResource() resource.Resource { return &AutomationResource{} }

// Metadata names the resource.
func (r *AutomationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_automation"
}

// Schema describes the resource.
func (r *AutomationResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Version: automationSchemaVersion,
		MarkdownDescription: "An automation: a trigger on Prefect events and the actions it runs, e.g. run a deployment " +
			"when an event arrives, or mark a flow run crashed when its heartbeats stop. See " +
			"[automations](https://docs.prefect.io/v3/automate/index). The schema is that of the prefecthq/prefect " +
			"provider; the server's defaults (`within`, `threshold`, `source`, a notification's subject) are planned, " +
			"so nothing shows as \"known after apply\" or as a diff after apply. Import with the automation's ID.",
		Attributes: withCloudScope(map[string]schema.Attribute{
			"id":      idAttribute("Automation ID (UUID)."),
			"created": createdAttribute(),
			"updated": updatedAttribute(),
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the automation.",
			},
			"description": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
				MarkdownDescription: "Description of the automation. Defaults to `\"\"`.",
			},
			"enabled": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the automation is evaluated. Defaults to `true`.",
			},
			"trigger": schema.SingleNestedAttribute{
				Required: true,
				MarkdownDescription: "What fires the automation. Set exactly one of `event`, `metric` (Prefect Cloud only), " +
					"`compound` or `sequence`.",
				Attributes: automationTriggerAttributes(),
			},
			"actions": automationActionsAttribute("The actions run when the automation fires. Defaults to none."),
			"actions_on_trigger": automationActionsAttribute("The actions run when the trigger enters the triggered state " +
				"(for Proactive triggers, when the expected events fail to arrive). Defaults to none."),
			"actions_on_resolve": automationActionsAttribute("The actions run when the trigger resolves " +
				"(returns from the triggered state). Defaults to none."),
		}),
	}
}

// automationTriggerAttributes are the trigger's kinds: the resource triggers
// plus the composite ones made of resource triggers.
func automationTriggerAttributes() map[string]schema.Attribute {
	attrs := automationResourceTriggerAttributes()
	composite := func(desc string, require bool) schema.SingleNestedAttribute {
		a := map[string]schema.Attribute{
			"triggers": schema.ListNestedAttribute{
				Required: true,
				MarkdownDescription: "The triggers combined, each with exactly one of `event` or `metric`. " +
					"For a sequence, in the order they must fire.",
				NestedObject: schema.NestedAttributeObject{Attributes: automationResourceTriggerAttributes()},
			},
			"within": schema.Float64Attribute{
				Optional:            true,
				MarkdownDescription: "Seconds within which the triggers must fire; unset means no limit.",
				Validators:          []validator.Float64{float64validator.AtLeast(0)},
			},
		}
		if require {
			a["require"] = schema.DynamicAttribute{
				Required: true,
				MarkdownDescription: "How many of the triggers must fire: `\"any\"`, `\"all\"`, or a number between 1 and " +
					"the number of triggers.",
				PlanModifiers: []planmodifier.Dynamic{requirePlan{}},
			}
		}
		return schema.SingleNestedAttribute{Optional: true, MarkdownDescription: desc, Attributes: a}
	}
	attrs["compound"] = composite("Fires when `require` of its triggers have fired `within` the period.", true)
	attrs["sequence"] = composite("Fires when all its triggers have fired in order `within` the period.", false)
	return attrs
}

// automationResourceTriggerAttributes are the event and metric triggers.
func automationResourceTriggerAttributes() map[string]schema.Attribute {
	emptySet := setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{}))
	match := func(desc string, v validator.String) schema.StringAttribute {
		return schema.StringAttribute{
			Optional: true,
			Computed: true,
			Default:  stringdefault.StaticString("{}"),
			MarkdownDescription: desc + " Use `jsonencode()`. Values may end in `*` to match prefixes. Defaults to `{}` " +
				"(every resource). Compared as JSON: spelling and key order never show as a diff.",
			Validators:    []validator.String{v},
			PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
		}
	}
	events := func(desc string) schema.SetAttribute {
		return schema.SetAttribute{
			ElementType:         types.StringType,
			Optional:            true,
			Computed:            true,
			Default:             emptySet,
			MarkdownDescription: desc + " Names may end in `*`, e.g. `prefect.flow-run.*`. Defaults to none.",
		}
	}
	return map[string]schema.Attribute{
		"event": schema.SingleNestedAttribute{
			Optional:            true,
			MarkdownDescription: "Fires on the presence (Reactive) or absence (Proactive) of events within a period.",
			Attributes: map[string]schema.Attribute{
				"posture": schema.StringAttribute{
					Required: true,
					MarkdownDescription: "`Reactive` fires when the expected events arrive; `Proactive` fires when they " +
						"do not arrive within the period.",
					Validators: []validator.String{stringvalidator.OneOf(postureReactive, postureProactive)},
				},
				"match": match("(JSON) Labels of the events' resources that the trigger covers, e.g. "+
					"`{\"prefect.resource.id\" = \"prefect.flow-run.*\"}`.", jsonattr.Object()),
				"match_related": match("(JSON) Labels of related resources that the trigger covers, e.g. "+
					"`{\"prefect.resource.role\" = \"flow\", \"prefect.resource.name\" = \"etl\"}`, or a list of such objects "+
					"that must all match.", jsonResourceSpec{}),
				"after":  events("Events that must be seen first; the trigger starts counting after one of them."),
				"expect": events("Events the trigger expects. If empty, every event matches."),
				"for_each": schema.SetAttribute{
					ElementType: types.StringType,
					Optional:    true,
					Computed:    true,
					Default:     emptySet,
					MarkdownDescription: "Labels whose values split the trigger: it is evaluated separately for each value, " +
						"e.g. `prefect.resource.id` for each flow run, or `related:flow:prefect.resource.id` for each flow. " +
						"Defaults to none.",
				},
				"threshold": schema.Int64Attribute{
					Optional:            true,
					Computed:            true,
					Default:             int64default.StaticInt64(1),
					MarkdownDescription: "Events needed to fire (Reactive) or expected (Proactive). Defaults to `1`.",
					Validators:          []validator.Int64{int64validator.AtLeast(0)},
				},
				"within": schema.Float64Attribute{
					Optional: true,
					Computed: true,
					MarkdownDescription: "Seconds over which the events are counted. Defaults to `0` for Reactive triggers. " +
						"Proactive triggers need at least `10`; for them `0` or unset means `10`, as on the server.",
					Validators:    []validator.Float64{float64validator.AtLeast(0)},
					PlanModifiers: []planmodifier.Float64{eventWithinPlan{}},
				},
			},
		},
		"metric": schema.SingleNestedAttribute{
			Optional:            true,
			MarkdownDescription: "(Prefect Cloud only) Fires on the result of a metric query.",
			Attributes: map[string]schema.Attribute{
				"match":         match("(JSON) Labels of the resources whose metric is queried.", jsonattr.Object()),
				"match_related": match("(JSON) Labels of related resources.", jsonResourceSpec{}),
				"metric": schema.SingleNestedAttribute{
					Required:            true,
					MarkdownDescription: "The metric query.",
					Attributes: map[string]schema.Attribute{
						"name": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "The metric: `lateness`, `duration` or `successes`.",
							Validators:          []validator.String{stringvalidator.OneOf("lateness", "duration", "successes")},
						},
						"operator": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "How the result compares with `threshold`: `<`, `<=`, `>` or `>=`.",
							Validators:          []validator.String{stringvalidator.OneOf("<", "<=", ">", ">=")},
						},
						"threshold": schema.Float64Attribute{
							Required:            true,
							MarkdownDescription: "The value the result is compared with.",
						},
						"range": schema.Float64Attribute{
							Required:            true,
							MarkdownDescription: "Seconds of history the query looks at.",
						},
						"firing_for": schema.Float64Attribute{
							Required:            true,
							MarkdownDescription: "Seconds the comparison must hold (or stop holding) before the trigger changes state.",
						},
					},
				},
			},
		},
	}
}

// automationActionsAttribute is a list of actions. Each action's type decides
// which of the other attributes apply; ValidateConfig enforces it.
func automationActionsAttribute(desc string) schema.ListNestedAttribute {
	var cloud []string
	for _, t := range automationActionTypes {
		if automationActionSpecs[t].cloudOnly {
			cloud = append(cloud, "`"+t+"`")
		}
	}
	typeDesc := "The action's type: `" + strings.Join(automationActionTypes, "`, `") + "`. " +
		"Prefect Cloud only: " + strings.Join(cloud, ", ") + ". The type decides which other attributes apply; " +
		"the plan reports any that are missing or unused."
	text := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	id := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc,
			PlanModifiers: []planmodifier.String{caseInsensitivePlan{}}}
	}
	withDefault := func(s schema.StringAttribute, attribute string) schema.StringAttribute {
		s.Computed = true
		s.PlanModifiers = append([]planmodifier.String{actionDefaultPlan{attribute: attribute}}, s.PlanModifiers...)
		return s
	}
	jsonObj := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{
			Optional: true,
			Computed: true,
			Default:  stringdefault.StaticString("{}"),
			MarkdownDescription: desc + " Use `jsonencode()`; string values may be Jinja templates such as " +
				"`\"{{ event.id }}\"`. Defaults to `{}`. Compared as JSON.",
			Validators:    []validator.String{jsonattr.Object()},
			PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
		}
	}
	return schema.ListNestedAttribute{
		Optional:            true,
		Computed:            true,
		Default:             listdefault.StaticValue(types.ListValueMust(automationActionObjectType(), []attr.Value{})),
		MarkdownDescription: desc,
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"type": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: typeDesc,
				Validators:          []validator.String{stringvalidator.OneOf(automationActionTypes...)},
			},
			"source": withDefault(schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "(Deployment, work pool, work queue and automation actions) `selected` acts on the " +
					"object whose ID is set; `inferred` acts on the one the triggering event is about. Defaults to `selected`.",
				Validators: []validator.String{stringvalidator.OneOf(sourceSelected, sourceInferred)},
			}, "source"),
			"deployment_id": id("(Deployment actions, and Cloud's schedule actions) ID of the deployment; " +
				"needed when `source` is `selected`."),
			"work_pool_id":  id("(Work pool actions) ID of the work pool; needed when `source` is `selected`."),
			"work_queue_id": id("(Work queue actions) ID of the work queue; needed when `source` is `selected`."),
			"automation_id": id("(Automation actions) ID of the automation to pause or resume; needed when `source` is `selected`."),
			"block_document_id": withDefault(id("(`call-webhook`, `send-notification`, `send-email-notification`) ID of "+
				"the webhook or notification block."), "block_document_id"),
			"schedule_id":   id("(Cloud's `pause-schedule-for-flow-run`, `resume-schedule-for-flow-run`) ID of the schedule."),
			"parameters":    jsonObj("(`run-deployment`) (JSON) Parameters of the flow run, over the deployment's."),
			"job_variables": jsonObj("(`run-deployment`) (JSON) Job variables of the flow run, over the deployment's."),
			"state": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "(`change-flow-run-state`) Type of the new state: `" + strings.Join(flowRunStateTypes, "`, `") + "`.",
				Validators:          []validator.String{stringvalidator.OneOf(flowRunStateTypes...)},
			},
			"name":    text("(`change-flow-run-state`) Name of the new state, e.g. `Zombie`; defaults to the type's name."),
			"message": text("(`change-flow-run-state`) Message of the new state, taken literally (not a template)."),
			"subject": withDefault(schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "(Notifications) Subject; may be a Jinja template. " +
					"Defaults to `Prefect automated notification`.",
			}, "subject"),
			"body": text("(Notifications) Body; may be a Jinja template such as `{{ flow_run.name }} failed`."),
			"payload": withDefault(schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "(`call-webhook`) Body sent to the webhook; may be a Jinja template. " +
					"JSON payloads compare as JSON. Defaults to `\"\"`.",
				PlanModifiers: []planmodifier.String{jsonattr.StringPlan()},
			}, "payload"),
			"emails": schema.ListAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "(Cloud's `send-email-notification`) Addresses to notify.",
			},
		}},
	}
}

// automationActionObjectType is the object type of one action.
func automationActionObjectType() types.ObjectType {
	attrTypes := map[string]attr.Type{"type": types.StringType, "emails": types.ListType{ElemType: types.StringType}}
	for name := range (&AutomationActionModel{}).stringFields() {
		attrTypes[name] = types.StringType
	}
	return types.ObjectType{AttrTypes: attrTypes}
}

// Configure receives the provider's client.
func (r *AutomationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, &resp.Diagnostics)
}

// Create creates the automation.
func (r *AutomationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan AutomationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in, ok := plan.toAPI(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	a, err := r.client.CreateAutomation(ctx, in)
	if err != nil {
		addAutomationError(&resp.Diagnostics, "create", plan, err)
		return
	}
	plan.fromAPI(ctx, a, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Read refreshes the automation; one deleted outside Terraform leaves the state.
func (r *AutomationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state AutomationResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	a, err := r.client.ReadAutomation(ctx, state.ID.ValueString())
	if prefect.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", automationName(state.Name.ValueString())+" ("+state.ID.ValueString()+")", err)
		return
	}
	state.fromAPI(ctx, a, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update replaces the automation's definition, so values changed outside
// Terraform are put back.
func (r *AutomationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan AutomationResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	in, ok := plan.toAPI(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	id := plan.ID.ValueString()
	if err := r.client.ReplaceAutomation(ctx, id, in); err != nil {
		addAutomationError(&resp.Diagnostics, "update", plan, err)
		return
	}
	a, err := r.client.ReadAutomation(ctx, id)
	if err != nil {
		addAPIError(&resp.Diagnostics, "read", automationName(in.Name)+" ("+id+")", err)
		return
	}
	plan.fromAPI(ctx, a, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// Delete deletes the automation; one already gone is fine.
func (r *AutomationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state AutomationResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !requireClient(r.client, &resp.Diagnostics) {
		return
	}
	if err := r.client.DeleteAutomation(ctx, state.ID.ValueString()); err != nil && !prefect.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, "delete", automationName(state.Name.ValueString())+" ("+state.ID.ValueString()+")", err)
	}
}

// ImportState imports an automation by ID.
func (r *AutomationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	id, ok := importID(req.ID, 1, "automation", &resp.Diagnostics)
	if !ok {
		return
	}
	if _, err := uuid.Parse(id); err != nil {
		resp.Diagnostics.AddError("Unable to import automation",
			fmt.Sprintf("%q is not an automation ID. Import with the automation's ID (a UUID), shown in the Prefect UI's "+
				"automation page URL or by `prefect automation inspect <name>`.", id))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), id)...)
}

// ValidateConfig checks what the schema cannot: one kind of trigger, and for
// each action type the attributes it needs and the ones it does not use.
func (r *AutomationResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var trigger *AutomationTriggerModel
	if d := req.Config.GetAttribute(ctx, path.Root("trigger"), &trigger); !d.HasError() {
		validateAutomationTrigger(trigger, path.Root("trigger"), &resp.Diagnostics)
	}
	for _, name := range []string{"actions", "actions_on_trigger", "actions_on_resolve"} {
		var actions []AutomationActionModel
		if d := req.Config.GetAttribute(ctx, path.Root(name), &actions); !d.HasError() {
			validateAutomationActions(actions, path.Root(name), &resp.Diagnostics)
		}
	}
}

// UpgradeState reads the state of the prefecthq/prefect provider (schema
// version 0), whose attributes are those of this provider, and of earlier
// releases of this provider.
func (r *AutomationResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return stateUpgrades(automationSchemaVersion, "prefect_automation", nil)
}

// ModifyPlan keeps the prior updated time in a plan that changes nothing else.
func (r *AutomationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	keepUpdatedWhenUnchanged(ctx, req, resp)
}

// addAutomationError is addAPIError with a hint when a self-hosted server
// rejects features only Prefect Cloud has.
func addAutomationError(diags *diag.Diagnostics, verb string, m AutomationResourceModel, err error) {
	what := automationName(m.Name.ValueString())
	if id := m.ID.ValueString(); id != "" {
		what += " (" + id + ")"
	}
	if cloud := m.cloudOnlyFeatures(); prefect.IsInvalid(err) && len(cloud) > 0 {
		err = fmt.Errorf("%w\n\nThis automation uses %s, which only Prefect Cloud has; a self-hosted server rejects them", err,
			strings.Join(cloud, " and "))
	}
	addAPIError(diags, verb, what, err)
}
