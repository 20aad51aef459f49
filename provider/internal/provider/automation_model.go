package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/pushpool/pushpool/dispatch/prefect"
	"github.com/pushpool/pushpool/provider/internal/jsonattr"
)

// This file holds what prefect_automation's resource and data source share:
// the model, its conversion to and from the API, the rules of each action
// type, and the server's defaults that the plan predicts.

// AutomationResourceModel is the state of a prefect_automation, and of the
// data source of the same name.
type AutomationResourceModel struct {
	cloudScope
	ID               types.String            `tfsdk:"id"`
	Created          types.String            `tfsdk:"created"`
	Updated          types.String            `tfsdk:"updated"`
	Name             types.String            `tfsdk:"name"`
	Description      types.String            `tfsdk:"description"`
	Enabled          types.Bool              `tfsdk:"enabled"`
	Trigger          *AutomationTriggerModel `tfsdk:"trigger"`
	Actions          []AutomationActionModel `tfsdk:"actions"`
	ActionsOnTrigger []AutomationActionModel `tfsdk:"actions_on_trigger"`
	ActionsOnResolve []AutomationActionModel `tfsdk:"actions_on_resolve"`
}

// AutomationTriggerModel is the trigger block; exactly one kind is set.
type AutomationTriggerModel struct {
	Event    *AutomationEventTriggerModel    `tfsdk:"event"`
	Metric   *AutomationMetricTriggerModel   `tfsdk:"metric"`
	Compound *AutomationCompoundTriggerModel `tfsdk:"compound"`
	Sequence *AutomationSequenceTriggerModel `tfsdk:"sequence"`
}

// AutomationResourceTriggerModel is one trigger of a compound or sequence
// trigger: an event or a metric trigger.
type AutomationResourceTriggerModel struct {
	Event  *AutomationEventTriggerModel  `tfsdk:"event"`
	Metric *AutomationMetricTriggerModel `tfsdk:"metric"`
}

// AutomationEventTriggerModel fires on the presence (Reactive) or absence
// (Proactive) of events.
type AutomationEventTriggerModel struct {
	Posture      types.String  `tfsdk:"posture"`
	Match        types.String  `tfsdk:"match"`
	MatchRelated types.String  `tfsdk:"match_related"`
	After        types.Set     `tfsdk:"after"`
	Expect       types.Set     `tfsdk:"expect"`
	ForEach      types.Set     `tfsdk:"for_each"`
	Threshold    types.Int64   `tfsdk:"threshold"`
	Within       types.Float64 `tfsdk:"within"`
}

// AutomationMetricTriggerModel fires on a metric query (Prefect Cloud only).
type AutomationMetricTriggerModel struct {
	Match        types.String                `tfsdk:"match"`
	MatchRelated types.String                `tfsdk:"match_related"`
	Metric       *AutomationMetricQueryModel `tfsdk:"metric"`
}

// AutomationMetricQueryModel is the query of a metric trigger.
type AutomationMetricQueryModel struct {
	Name      types.String  `tfsdk:"name"`
	Operator  types.String  `tfsdk:"operator"`
	Threshold types.Float64 `tfsdk:"threshold"`
	Range     types.Float64 `tfsdk:"range"`
	FiringFor types.Float64 `tfsdk:"firing_for"`
}

// AutomationCompoundTriggerModel fires when enough of its triggers fire
// within a period.
type AutomationCompoundTriggerModel struct {
	Require  types.Dynamic                    `tfsdk:"require"`
	Within   types.Float64                    `tfsdk:"within"`
	Triggers []AutomationResourceTriggerModel `tfsdk:"triggers"`
}

// AutomationSequenceTriggerModel fires when its triggers fire in order.
type AutomationSequenceTriggerModel struct {
	Within   types.Float64                    `tfsdk:"within"`
	Triggers []AutomationResourceTriggerModel `tfsdk:"triggers"`
}

// AutomationActionModel is one action. Which attributes apply depends on
// its type; see automationActionSpecs.
type AutomationActionModel struct {
	Type            types.String `tfsdk:"type"`
	Source          types.String `tfsdk:"source"`
	DeploymentID    types.String `tfsdk:"deployment_id"`
	WorkPoolID      types.String `tfsdk:"work_pool_id"`
	WorkQueueID     types.String `tfsdk:"work_queue_id"`
	AutomationID    types.String `tfsdk:"automation_id"`
	BlockDocumentID types.String `tfsdk:"block_document_id"`
	ScheduleID      types.String `tfsdk:"schedule_id"`
	Parameters      types.String `tfsdk:"parameters"`
	JobVariables    types.String `tfsdk:"job_variables"`
	State           types.String `tfsdk:"state"`
	Name            types.String `tfsdk:"name"`
	Message         types.String `tfsdk:"message"`
	Subject         types.String `tfsdk:"subject"`
	Body            types.String `tfsdk:"body"`
	Payload         types.String `tfsdk:"payload"`
	Emails          types.List   `tfsdk:"emails"`
}

// stringFields maps the attribute names of an action's string attributes to
// the fields, so the per-type rules can be applied by name.
func (a *AutomationActionModel) stringFields() map[string]*types.String {
	return map[string]*types.String{
		"source":            &a.Source,
		"deployment_id":     &a.DeploymentID,
		"work_pool_id":      &a.WorkPoolID,
		"work_queue_id":     &a.WorkQueueID,
		"automation_id":     &a.AutomationID,
		"block_document_id": &a.BlockDocumentID,
		"schedule_id":       &a.ScheduleID,
		"parameters":        &a.Parameters,
		"job_variables":     &a.JobVariables,
		"state":             &a.State,
		"name":              &a.Name,
		"message":           &a.Message,
		"subject":           &a.Subject,
		"body":              &a.Body,
		"payload":           &a.Payload,
	}
}

// Server defaults and limits (Prefect 3.9.1, prefect.server.events).
const (
	postureReactive  = "Reactive"
	postureProactive = "Proactive"
	postureMetric    = "Metric"

	// proactiveMinWithin is the shortest window of a Proactive trigger; the
	// server turns a within of 0 into it.
	proactiveMinWithin = 10.0

	defaultNotificationSubject = "Prefect automated notification"
	sourceSelected             = "selected"
	sourceInferred             = "inferred"
)

// flowRunStateTypes are the states change-flow-run-state accepts.
var flowRunStateTypes = []string{"SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"}

// automationActionSpec says which attributes an action type uses.
type automationActionSpec struct {
	// fields are the attributes besides type that the type uses.
	fields []string
	// target is the ID attribute that source = "selected" requires and
	// source = "inferred" forbids; empty for types without a source.
	target string
	// required attributes must be set.
	required []string
	// cloudOnly types are rejected by a self-hosted server.
	cloudOnly bool
}

// automationActionTypes lists the action types in the order the docs show them.
var automationActionTypes = []string{
	"do-nothing", "run-deployment", "pause-deployment", "resume-deployment",
	"cancel-flow-run", "change-flow-run-state", "suspend-flow-run", "resume-flow-run", "delete-flow-run",
	"pause-work-queue", "resume-work-queue", "pause-work-pool", "resume-work-pool",
	"pause-automation", "resume-automation", "send-notification", "call-webhook",
	"send-email-notification", "declare-incident", "pause-schedule-for-flow-run", "resume-schedule-for-flow-run",
}

var automationActionSpecs = map[string]automationActionSpec{
	"do-nothing":        {},
	"run-deployment":    {fields: []string{"source", "deployment_id", "parameters", "job_variables"}, target: "deployment_id"},
	"pause-deployment":  {fields: []string{"source", "deployment_id"}, target: "deployment_id"},
	"resume-deployment": {fields: []string{"source", "deployment_id"}, target: "deployment_id"},
	"cancel-flow-run":   {},
	"change-flow-run-state": {
		fields: []string{"state", "name", "message"}, required: []string{"state"},
	},
	"suspend-flow-run":  {},
	"resume-flow-run":   {},
	"delete-flow-run":   {},
	"pause-work-queue":  {fields: []string{"source", "work_queue_id"}, target: "work_queue_id"},
	"resume-work-queue": {fields: []string{"source", "work_queue_id"}, target: "work_queue_id"},
	"pause-work-pool":   {fields: []string{"source", "work_pool_id"}, target: "work_pool_id"},
	"resume-work-pool":  {fields: []string{"source", "work_pool_id"}, target: "work_pool_id"},
	"pause-automation":  {fields: []string{"source", "automation_id"}, target: "automation_id"},
	"resume-automation": {fields: []string{"source", "automation_id"}, target: "automation_id"},
	"send-notification": {fields: []string{"block_document_id", "subject", "body"}, required: []string{"block_document_id", "body"}},
	"call-webhook":      {fields: []string{"block_document_id", "payload"}, required: []string{"block_document_id"}},
	"send-email-notification": {
		fields: []string{"block_document_id", "emails", "subject", "body"}, required: []string{"emails"}, cloudOnly: true,
	},
	"declare-incident": {cloudOnly: true},
	"pause-schedule-for-flow-run": {
		fields: []string{"deployment_id", "schedule_id"}, required: []string{"deployment_id", "schedule_id"}, cloudOnly: true,
	},
	"resume-schedule-for-flow-run": {
		fields: []string{"deployment_id", "schedule_id"}, required: []string{"deployment_id", "schedule_id"}, cloudOnly: true,
	},
}

// uses reports whether actions of this type use the attribute.
func (s automationActionSpec) uses(attribute string) bool {
	return slices.Contains(s.fields, attribute)
}

// actionDefault is the value the server stores for an unset attribute of an
// action of the given type. known is false when only the server knows it
// (Cloud-only types); an attribute the type does not use is null.
func actionDefault(actionType, attribute string) (v types.String, known bool) {
	spec, ok := automationActionSpecs[actionType]
	if !ok || !spec.uses(attribute) {
		return types.StringNull(), true
	}
	if spec.cloudOnly {
		return types.StringUnknown(), false
	}
	switch {
	case attribute == "source":
		return types.StringValue(sourceSelected), true
	case attribute == "subject" && actionType == "send-notification":
		return types.StringValue(defaultNotificationSubject), true
	case attribute == "payload" && actionType == "call-webhook":
		return types.StringValue(""), true
	}
	return types.StringNull(), true
}

// eventWithin is the window the server stores for an event trigger's within:
// a Proactive trigger's 0 (or none) becomes 10 seconds, a Reactive one's none
// becomes 0.
func eventWithin(posture string, within *float64) float64 {
	w := 0.0
	if within != nil {
		w = *within
	}
	if posture == postureProactive && w == 0 {
		return proactiveMinWithin
	}
	return w
}

// ---- Terraform → API ----

// toAPI converts a planned automation; ok is false after a diagnostic.
func (m AutomationResourceModel) toAPI(ctx context.Context, diags *diag.Diagnostics) (prefect.Automation, bool) {
	out := prefect.Automation{
		Name:        m.Name.ValueString(),
		Description: m.Description.ValueString(),
		Enabled:     m.Enabled.ValueBool(),
	}
	if m.Trigger == nil {
		diags.AddAttributeError(path.Root("trigger"), "Missing trigger", "Set trigger with one of event, compound or sequence.")
		return out, false
	}
	out.Trigger = m.Trigger.toAPI(ctx, path.Root("trigger"), diags)
	out.Actions = actionsToAPI(ctx, m.Actions, path.Root("actions"), diags)
	out.ActionsOnTrigger = actionsToAPI(ctx, m.ActionsOnTrigger, path.Root("actions_on_trigger"), diags)
	out.ActionsOnResolve = actionsToAPI(ctx, m.ActionsOnResolve, path.Root("actions_on_resolve"), diags)
	return out, !diags.HasError()
}

func (t *AutomationTriggerModel) toAPI(ctx context.Context, p path.Path, diags *diag.Diagnostics) map[string]any {
	switch {
	case t.Event != nil:
		return t.Event.toAPI(ctx, p.AtName("event"), diags)
	case t.Metric != nil:
		return t.Metric.toAPI(p.AtName("metric"), diags)
	case t.Compound != nil:
		out := map[string]any{
			"type":     "compound",
			"within":   float64Ptr(t.Compound.Within),
			"triggers": resourceTriggersToAPI(ctx, t.Compound.Triggers, p.AtName("compound").AtName("triggers"), diags),
		}
		require, err := requireValue(t.Compound.Require)
		if err != nil {
			diags.AddAttributeError(p.AtName("compound").AtName("require"), "Invalid require", err.Error())
		}
		out["require"] = require
		return out
	case t.Sequence != nil:
		return map[string]any{
			"type":     "sequence",
			"within":   float64Ptr(t.Sequence.Within),
			"triggers": resourceTriggersToAPI(ctx, t.Sequence.Triggers, p.AtName("sequence").AtName("triggers"), diags),
		}
	}
	diags.AddAttributeError(p, "Missing trigger kind", "Set one of trigger.event, trigger.compound or trigger.sequence.")
	return nil
}

func resourceTriggersToAPI(ctx context.Context, ts []AutomationResourceTriggerModel, p path.Path, diags *diag.Diagnostics) []map[string]any {
	out := make([]map[string]any, 0, len(ts))
	for i, t := range ts {
		switch {
		case t.Event != nil:
			out = append(out, t.Event.toAPI(ctx, p.AtListIndex(i).AtName("event"), diags))
		case t.Metric != nil:
			out = append(out, t.Metric.toAPI(p.AtListIndex(i).AtName("metric"), diags))
		default:
			diags.AddAttributeError(p.AtListIndex(i), "Missing trigger kind", "Set event (or, on Prefect Cloud, metric).")
		}
	}
	return out
}

func (e *AutomationEventTriggerModel) toAPI(ctx context.Context, p path.Path, diags *diag.Diagnostics) map[string]any {
	out := map[string]any{
		"type":          "event",
		"posture":       e.Posture.ValueString(),
		"match":         decodeJSONAttr(e.Match, p.AtName("match"), map[string]any{}, diags),
		"match_related": decodeJSONAttr(e.MatchRelated, p.AtName("match_related"), map[string]any{}, diags),
		"after":         setStrings(ctx, e.After, diags),
		"expect":        setStrings(ctx, e.Expect, diags),
		"for_each":      setStrings(ctx, e.ForEach, diags),
	}
	if !e.Threshold.IsNull() && !e.Threshold.IsUnknown() {
		out["threshold"] = e.Threshold.ValueInt64()
	}
	if w := float64Ptr(e.Within); w != nil {
		out["within"] = *w
	}
	return out
}

func (m *AutomationMetricTriggerModel) toAPI(p path.Path, diags *diag.Diagnostics) map[string]any {
	out := map[string]any{
		"type":          "metric",
		"posture":       postureMetric,
		"match":         decodeJSONAttr(m.Match, p.AtName("match"), map[string]any{}, diags),
		"match_related": decodeJSONAttr(m.MatchRelated, p.AtName("match_related"), map[string]any{}, diags),
	}
	if q := m.Metric; q != nil {
		out["metric"] = map[string]any{
			"name":       q.Name.ValueString(),
			"operator":   q.Operator.ValueString(),
			"threshold":  q.Threshold.ValueFloat64(),
			"range":      q.Range.ValueFloat64(),
			"firing_for": q.FiringFor.ValueFloat64(),
		}
	}
	return out
}

// actionsToAPI sends each action's type and only the attributes its type
// uses; unset ones are left for the server to fill in.
func actionsToAPI(ctx context.Context, actions []AutomationActionModel, p path.Path, diags *diag.Diagnostics) []map[string]any {
	out := make([]map[string]any, 0, len(actions))
	for i := range actions {
		a := &actions[i]
		typ := a.Type.ValueString()
		spec := automationActionSpecs[typ]
		body := map[string]any{"type": typ}
		fields := a.stringFields()
		for _, name := range spec.fields {
			if name == "emails" {
				if !a.Emails.IsNull() && !a.Emails.IsUnknown() {
					var emails []string
					diags.Append(a.Emails.ElementsAs(ctx, &emails, false)...)
					body["emails"] = emails
				}
				continue
			}
			v := fields[name]
			if v.IsNull() || v.IsUnknown() {
				continue
			}
			switch name {
			case "parameters", "job_variables":
				body[name] = decodeJSONAttr(*v, p.AtListIndex(i).AtName(name), nil, diags)
			default:
				body[name] = v.ValueString()
			}
		}
		out = append(out, body)
	}
	return out
}

// decodeJSONAttr decodes a JSON attribute; null or unknown gives empty.
func decodeJSONAttr(v types.String, p path.Path, empty any, diags *diag.Diagnostics) any {
	if v.IsNull() || v.IsUnknown() {
		return empty
	}
	doc, err := jsonattr.Decode(v.ValueString())
	if err != nil {
		diags.AddAttributeError(p, "Invalid JSON", fmt.Sprintf("%s is %s.", p, err))
		return empty
	}
	return doc
}

// setStrings converts a set of strings; null or unknown is empty.
func setStrings(ctx context.Context, v types.Set, diags *diag.Diagnostics) []string {
	out := []string{}
	if v.IsNull() || v.IsUnknown() {
		return out
	}
	diags.Append(v.ElementsAs(ctx, &out, false)...)
	return out
}

// float64Ptr returns nil for a null or unknown number.
func float64Ptr(v types.Float64) *float64 {
	if v.IsNull() || v.IsUnknown() {
		return nil
	}
	f := v.ValueFloat64()
	return &f
}

// ---- API → Terraform ----

// fromAPI copies the server's automation into the model. Where the model
// (the plan, or the prior state) holds a value the server stores in another
// form, that value is kept: a JSON document spelled differently, a Proactive
// within of 0 (stored as 10), a require of 2 written as "2".
func (m *AutomationResourceModel) fromAPI(ctx context.Context, a prefect.Automation, diags *diag.Diagnostics) {
	m.ID = types.StringValue(a.ID)
	m.Created = timePtr(a.Created)
	m.Updated = timePtr(a.Updated)
	m.Name = types.StringValue(a.Name)
	m.Description = types.StringValue(a.Description)
	m.Enabled = types.BoolValue(a.Enabled)
	m.Trigger = triggerFromAPI(ctx, m.Trigger, a.Trigger, diags)
	m.Actions = actionsFromAPI(ctx, m.Actions, a.Actions, diags)
	m.ActionsOnTrigger = actionsFromAPI(ctx, m.ActionsOnTrigger, a.ActionsOnTrigger, diags)
	m.ActionsOnResolve = actionsFromAPI(ctx, m.ActionsOnResolve, a.ActionsOnResolve, diags)
}

func triggerFromAPI(ctx context.Context, prior *AutomationTriggerModel, t map[string]any, diags *diag.Diagnostics) *AutomationTriggerModel {
	if prior == nil {
		prior = &AutomationTriggerModel{}
	}
	out := &AutomationTriggerModel{}
	switch typ, _ := t["type"].(string); typ {
	case "event":
		out.Event = eventFromAPI(ctx, prior.Event, t, diags)
	case "metric":
		out.Metric = metricFromAPI(prior.Metric, t)
	case "compound":
		var p AutomationCompoundTriggerModel
		if prior.Compound != nil {
			p = *prior.Compound
		}
		out.Compound = &AutomationCompoundTriggerModel{
			Require:  keepRequire(p.Require, t["require"]),
			Within:   keepFloat(p.Within, number(t["within"])),
			Triggers: resourceTriggersFromAPI(ctx, p.Triggers, t["triggers"], diags),
		}
	case "sequence":
		var p AutomationSequenceTriggerModel
		if prior.Sequence != nil {
			p = *prior.Sequence
		}
		out.Sequence = &AutomationSequenceTriggerModel{
			Within:   keepFloat(p.Within, number(t["within"])),
			Triggers: resourceTriggersFromAPI(ctx, p.Triggers, t["triggers"], diags),
		}
	default:
		diags.AddError("Unsupported automation trigger",
			fmt.Sprintf("The server returned a trigger of type %q, which this provider does not know. Manage this automation in the Prefect UI, or upgrade the provider.", typ))
	}
	return out
}

func resourceTriggersFromAPI(ctx context.Context, prior []AutomationResourceTriggerModel, raw any, diags *diag.Diagnostics) []AutomationResourceTriggerModel {
	items, _ := raw.([]any)
	out := make([]AutomationResourceTriggerModel, 0, len(items))
	for i, item := range items {
		t, _ := item.(map[string]any)
		var p AutomationResourceTriggerModel
		if i < len(prior) {
			p = prior[i]
		}
		var rt AutomationResourceTriggerModel
		switch typ, _ := t["type"].(string); typ {
		case "event":
			rt.Event = eventFromAPI(ctx, p.Event, t, diags)
		case "metric":
			rt.Metric = metricFromAPI(p.Metric, t)
		default:
			diags.AddError("Unsupported automation trigger",
				fmt.Sprintf("The server returned a nested trigger of type %q; this provider supports event and metric triggers inside compound and sequence triggers.", typ))
		}
		out = append(out, rt)
	}
	return out
}

func eventFromAPI(ctx context.Context, prior *AutomationEventTriggerModel, t map[string]any, diags *diag.Diagnostics) *AutomationEventTriggerModel {
	var p AutomationEventTriggerModel
	if prior != nil {
		p = *prior
	}
	posture, _ := t["posture"].(string)
	e := &AutomationEventTriggerModel{
		Posture:      types.StringValue(posture),
		Match:        keepJSON(p.Match, t["match"], map[string]any{}, diags),
		MatchRelated: keepJSON(p.MatchRelated, t["match_related"], map[string]any{}, diags),
		After:        anyStringSet(ctx, t["after"], diags),
		Expect:       anyStringSet(ctx, t["expect"], diags),
		ForEach:      anyStringSet(ctx, t["for_each"], diags),
		Threshold:    types.Int64Null(),
		Within:       types.Float64Null(),
	}
	if n := number(t["threshold"]); n != nil {
		e.Threshold = types.Int64Value(int64(*n))
	}
	if w := number(t["within"]); w != nil {
		e.Within = types.Float64Value(*w)
		if prior := float64Ptr(p.Within); prior != nil && eventWithin(posture, prior) == *w {
			e.Within = p.Within
		}
	}
	return e
}

func metricFromAPI(prior *AutomationMetricTriggerModel, t map[string]any) *AutomationMetricTriggerModel {
	var p AutomationMetricTriggerModel
	if prior != nil {
		p = *prior
	}
	var diags diag.Diagnostics // a metric trigger's JSON comes from the server and always encodes
	m := &AutomationMetricTriggerModel{
		Match:        keepJSON(p.Match, t["match"], map[string]any{}, &diags),
		MatchRelated: keepJSON(p.MatchRelated, t["match_related"], map[string]any{}, &diags),
	}
	if q, ok := t["metric"].(map[string]any); ok {
		name, _ := q["name"].(string)
		op, _ := q["operator"].(string)
		m.Metric = &AutomationMetricQueryModel{
			Name:      types.StringValue(name),
			Operator:  types.StringValue(op),
			Threshold: float64Value(number(q["threshold"])),
			Range:     float64Value(number(q["range"])),
			FiringFor: float64Value(number(q["firing_for"])),
		}
	}
	return m
}

func actionsFromAPI(ctx context.Context, prior []AutomationActionModel, actions []map[string]any, diags *diag.Diagnostics) []AutomationActionModel {
	out := make([]AutomationActionModel, 0, len(actions))
	for i, raw := range actions {
		var p AutomationActionModel
		if i < len(prior) {
			p = prior[i]
		}
		typ, _ := raw["type"].(string)
		a := AutomationActionModel{Type: types.StringValue(typ), Emails: types.ListNull(types.StringType)}
		priorFields, fields := p.stringFields(), a.stringFields()
		for name, v := range fields {
			server, present := raw[name]
			switch name {
			case "parameters", "job_variables":
				// Unset, null and {} all mean "the deployment's own values".
				*v = keepJSON(*priorFields[name], server, map[string]any{}, diags)
			case "payload":
				*v = optionalStringValue(server)
				if s, ok := server.(string); ok {
					*v = jsonattr.KeepString(*priorFields[name], s)
				}
			default:
				*v = optionalStringValue(server)
				if prior := priorFields[name]; present && isUUIDField(name) && !prior.IsNull() && !prior.IsUnknown() &&
					strings.EqualFold(prior.ValueString(), v.ValueString()) {
					*v = *prior // the server spells UUIDs in lower case
				}
			}
		}
		if emails, ok := raw["emails"].([]any); ok && len(emails) > 0 {
			a.Emails = stringList(ctx, anyStrings(emails), diags)
		}
		out = append(out, a)
	}
	return out
}

func isUUIDField(name string) bool { return strings.HasSuffix(name, "_id") }

// keepJSON encodes a server JSON value (null counts as empty) and keeps prior
// when it is semantically equal.
func keepJSON(prior types.String, server, empty any, diags *diag.Diagnostics) types.String {
	if server == nil {
		server = empty
	}
	doc, err := jsonattr.Encode(server)
	if err != nil {
		diags.AddError("Unable to read automation", err.Error())
		return prior
	}
	return jsonattr.KeepString(prior, doc)
}

// requireValue converts a compound trigger's require to what the server
// takes: "any", "all" or a whole number (written as a number or a string).
func requireValue(v types.Dynamic) (any, error) {
	raw, err := jsonattr.FromAttr(v)
	if err != nil {
		return nil, err
	}
	s := fmt.Sprint(raw)
	if s == "any" || s == "all" {
		return s, nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != math.Trunc(n) {
		return nil, fmt.Errorf(`require must be "any", "all" or a whole number of triggers, got %q`, s)
	}
	return int64(n), nil
}

// keepRequire keeps the prior require when it means the server's value.
func keepRequire(prior types.Dynamic, server any) types.Dynamic {
	if !prior.IsNull() && !prior.IsUnknown() {
		if p, err := requireValue(prior); err == nil && fmt.Sprint(p) == fmt.Sprint(server) {
			return prior
		}
	}
	return types.DynamicValue(jsonattr.ToAttr(server))
}

// keepFloat returns prior when it equals the server's number, else the server's.
func keepFloat(prior types.Float64, server *float64) types.Float64 {
	if server == nil {
		return types.Float64Null()
	}
	if p := float64Ptr(prior); p != nil && *p == *server {
		return prior
	}
	return types.Float64Value(*server)
}

func float64Value(f *float64) types.Float64 {
	if f == nil {
		return types.Float64Null()
	}
	return types.Float64Value(*f)
}

// number reads a JSON number decoded with UseNumber (or as float64).
func number(v any) *float64 {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(n.String(), 64); err != nil {
			return nil
		}
	case float64:
		f = n
	default:
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func optionalStringValue(v any) types.String {
	if s, ok := v.(string); ok {
		return types.StringValue(s)
	}
	return types.StringNull()
}

func anyStrings(items []any) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// anyStringSet converts a JSON array of strings to a set value.
func anyStringSet(ctx context.Context, raw any, diags *diag.Diagnostics) types.Set {
	items, _ := raw.([]any)
	v, d := types.SetValueFrom(ctx, types.StringType, anyStrings(items))
	diags.Append(d...)
	return v
}

// cloudOnlyFeatures names the Prefect Cloud features an automation uses, for
// the hint on an error from a self-hosted server.
func (m AutomationResourceModel) cloudOnlyFeatures() []string {
	var out []string
	if t := m.Trigger; t != nil {
		metric := t.Metric != nil
		for _, rts := range [][]AutomationResourceTriggerModel{compoundTriggers(t), sequenceTriggers(t)} {
			for _, rt := range rts {
				metric = metric || rt.Metric != nil
			}
		}
		if metric {
			out = append(out, "metric triggers")
		}
	}
	for _, list := range [][]AutomationActionModel{m.Actions, m.ActionsOnTrigger, m.ActionsOnResolve} {
		for _, a := range list {
			typ := a.Type.ValueString()
			if automationActionSpecs[typ].cloudOnly && !slices.Contains(out, typ+" actions") {
				out = append(out, typ+" actions")
			}
		}
	}
	return out
}

func compoundTriggers(t *AutomationTriggerModel) []AutomationResourceTriggerModel {
	if t.Compound == nil {
		return nil
	}
	return t.Compound.Triggers
}

func sequenceTriggers(t *AutomationTriggerModel) []AutomationResourceTriggerModel {
	if t.Sequence == nil {
		return nil
	}
	return t.Sequence.Triggers
}

func automationName(name string) string { return fmt.Sprintf("automation %q", name) }

// ---- validation ----

// validateAutomationTrigger checks what the schema cannot: exactly one kind of
// trigger, the composite triggers' require and sizes, and Proactive windows.
// Unknown values are skipped; they are checked again at apply.
func validateAutomationTrigger(t *AutomationTriggerModel, p path.Path, diags *diag.Diagnostics) {
	if t == nil {
		return
	}
	var kinds []string
	for name, set := range map[string]bool{"event": t.Event != nil, "metric": t.Metric != nil, "compound": t.Compound != nil, "sequence": t.Sequence != nil} {
		if set {
			kinds = append(kinds, name)
		}
	}
	slices.Sort(kinds)
	if len(kinds) != 1 {
		what := "none of them"
		if len(kinds) > 1 {
			what = strings.Join(kinds, " and ")
		}
		diags.AddAttributeError(p, "Invalid automation trigger",
			fmt.Sprintf("trigger must set exactly one of event, metric, compound or sequence; it sets %s. "+
				"To combine triggers, list them in compound.triggers or sequence.triggers.", what))
		return
	}
	switch {
	case t.Event != nil:
		validateEventTrigger(t.Event, p.AtName("event"), diags)
	case t.Compound != nil:
		c := t.Compound
		validateResourceTriggers(c.Triggers, p.AtName("compound").AtName("triggers"), diags)
		if c.Require.IsNull() || c.Require.IsUnderlyingValueUnknown() {
			return
		}
		req, err := requireValue(c.Require)
		if err != nil {
			diags.AddAttributeError(p.AtName("compound").AtName("require"), "Invalid require", err.Error()+".")
			return
		}
		if n, ok := req.(int64); ok && (n < 1 || int(n) > len(c.Triggers)) {
			diags.AddAttributeError(p.AtName("compound").AtName("require"), "Invalid require",
				fmt.Sprintf("require = %d, but the compound trigger lists %d triggers: require must be between 1 and %d, or \"any\" or \"all\".",
					n, len(c.Triggers), len(c.Triggers)))
		}
	case t.Sequence != nil:
		validateResourceTriggers(t.Sequence.Triggers, p.AtName("sequence").AtName("triggers"), diags)
	}
}

func validateResourceTriggers(ts []AutomationResourceTriggerModel, p path.Path, diags *diag.Diagnostics) {
	if ts == nil {
		return // unknown, or null and reported as required
	}
	if len(ts) == 0 {
		diags.AddAttributeError(p, "Invalid automation trigger", "triggers must list at least one trigger.")
	}
	for i, t := range ts {
		switch {
		case t.Event != nil && t.Metric != nil:
			diags.AddAttributeError(p.AtListIndex(i), "Invalid automation trigger",
				"Each entry of triggers sets exactly one of event or metric; this one sets both. Make them two entries.")
		case t.Event == nil && t.Metric == nil:
			diags.AddAttributeError(p.AtListIndex(i), "Invalid automation trigger",
				"Each entry of triggers sets exactly one of event or metric; this one sets neither.")
		case t.Event != nil:
			validateEventTrigger(t.Event, p.AtListIndex(i).AtName("event"), diags)
		}
	}
}

func validateEventTrigger(e *AutomationEventTriggerModel, p path.Path, diags *diag.Diagnostics) {
	if e.Posture.ValueString() == postureReactive && !e.Expect.IsUnknown() && len(e.Expect.Elements()) == 0 &&
		!e.Match.IsUnknown() && (e.Match.IsNull() || jsonattr.Equal(e.Match.ValueString(), "{}")) {
		diags.AddAttributeWarning(p.AtName("expect"), "Automation trigger matches every event",
			"This Reactive trigger has no expect and no match, so it fires on every event the server receives, "+
				"including the prefect.automation.* events that automations (this one too) emit when they fire. "+
				"On a self-hosted server that loop floods the event pipeline. List the events in expect, "+
				"or narrow match, e.g. match = jsonencode({ \"prefect.resource.id\" = \"prefect.flow-run.*\" }).")
	}
	w := float64Ptr(e.Within)
	if w == nil || e.Posture.ValueString() != postureProactive {
		return
	}
	if *w > 0 && *w < proactiveMinWithin {
		diags.AddAttributeError(p.AtName("within"), "Invalid within",
			fmt.Sprintf("A Proactive trigger waits at least %g seconds for the expected events; within = %g is shorter. "+
				"Set within to %g or more (0 or unset means %g).", proactiveMinWithin, *w, proactiveMinWithin, proactiveMinWithin))
	}
}

// validateAutomationActions applies each action type's rules: the attributes
// it needs, the ones it does not use, and source = "selected" or "inferred".
func validateAutomationActions(actions []AutomationActionModel, p path.Path, diags *diag.Diagnostics) {
	for i := range actions {
		a := &actions[i]
		if a.Type.IsNull() || a.Type.IsUnknown() {
			continue
		}
		typ := a.Type.ValueString()
		spec, ok := automationActionSpecs[typ]
		if !ok {
			continue // the type's validator reports it
		}
		ap := p.AtListIndex(i)
		fields := a.stringFields()
		set := func(name string) bool {
			if name == "emails" {
				return !a.Emails.IsNull()
			}
			return !fields[name].IsNull()
		}
		uses := "takes no other attributes"
		if len(spec.fields) > 0 {
			uses = "uses only " + strings.Join(spec.fields, ", ")
		}
		names := append(slices.Sorted(maps.Keys(fields)), "emails")
		for _, name := range names {
			if !set(name) || spec.uses(name) {
				continue
			}
			if (name == "parameters" || name == "job_variables") && !fields[name].IsUnknown() && jsonattr.Equal(fields[name].ValueString(), "{}") {
				continue // the default, accepted on every action
			}
			diags.AddAttributeError(ap.AtName(name), "Attribute not used by this action type",
				fmt.Sprintf("A %q action does not use %s; remove it. A %q action %s.", typ, name, typ, uses))
		}
		for _, name := range spec.required {
			if !set(name) {
				diags.AddAttributeError(ap.AtName(name), "Missing attribute for this action type",
					fmt.Sprintf("A %q action needs %s.", typ, name))
			}
		}
		if spec.target == "" || a.Source.IsUnknown() {
			continue
		}
		source := a.Source.ValueString()
		if a.Source.IsNull() {
			source = sourceSelected
		}
		switch {
		case source == sourceSelected && !set(spec.target):
			diags.AddAttributeError(ap.AtName(spec.target), "Missing attribute for this action type",
				fmt.Sprintf("A %q action with source = \"selected\" (the default) needs %s, the object to act on. "+
					"Set %s, or set source = \"inferred\" to act on the one the triggering event is about.", typ, spec.target, spec.target))
		case source == sourceInferred && set(spec.target):
			diags.AddAttributeError(ap.AtName(spec.target), "Attribute not used by this action type",
				fmt.Sprintf("A %q action with source = \"inferred\" acts on the object the triggering event is about, so %s must not be set. "+
					"Remove %s, or set source = \"selected\".", typ, spec.target, spec.target))
		}
	}
}

// ---- plan ----

// eventWithinPlan plans an event trigger's within as the server will store
// it: unset becomes 0 (Reactive) or 10 (Proactive), and a configured value
// the server stores as the state's (a Proactive 0 as 10) plans the state's.
type eventWithinPlan struct{}

func (eventWithinPlan) Description(context.Context) string {
	return "Plans the server's window: 0 seconds for Reactive triggers, 10 for Proactive ones when unset or 0."
}

func (m eventWithinPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (eventWithinPlan) PlanModifyFloat64(ctx context.Context, req planmodifier.Float64Request, resp *planmodifier.Float64Response) {
	if req.ConfigValue.IsUnknown() {
		return
	}
	var posture types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, req.Path.ParentPath().AtName("posture"), &posture)...)
	if resp.Diagnostics.HasError() || posture.IsNull() || posture.IsUnknown() {
		return
	}
	want := eventWithin(posture.ValueString(), float64Ptr(req.ConfigValue))
	s := float64Ptr(req.StateValue)
	switch {
	case req.ConfigValue.IsNull() && s != nil && *s == want:
		resp.PlanValue = req.StateValue
	case req.ConfigValue.IsNull():
		resp.PlanValue = types.Float64Value(want)
	case s != nil && eventWithin(posture.ValueString(), s) == want:
		resp.PlanValue = req.StateValue // e.g. a configured 0 for the stored 10 of a Proactive trigger
	}
}

// actionDefaultPlan plans an unset action attribute as the server will store
// it for the action's type (see actionDefault): source "selected", a
// notification's default subject, an empty webhook payload, or null.
type actionDefaultPlan struct{ attribute string }

func (m actionDefaultPlan) Description(context.Context) string {
	return "Plans the value the server stores for " + m.attribute + " when it is unset, which depends on the action's type."
}

func (m actionDefaultPlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (m actionDefaultPlan) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if !req.ConfigValue.IsNull() {
		return
	}
	typePath := req.Path.ParentPath().AtName("type")
	var typ types.String
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, typePath, &typ)...)
	if resp.Diagnostics.HasError() || typ.IsNull() || typ.IsUnknown() {
		return
	}
	if v, known := actionDefault(typ.ValueString(), m.attribute); known {
		resp.PlanValue = v
		return
	}
	// Only the server knows the default: keep the stored one while the type stays.
	if req.State.Raw.IsNull() || req.StateValue.IsNull() || req.StateValue.IsUnknown() {
		return
	}
	var priorType types.String
	if d := req.State.GetAttribute(ctx, typePath, &priorType); !d.HasError() && priorType.Equal(typ) {
		resp.PlanValue = req.StateValue
	}
}

// jsonResourceSpec validates match_related: a JSON object, or an array of
// objects that must all match.
type jsonResourceSpec struct{}

func (jsonResourceSpec) Description(context.Context) string {
	return "must be a JSON object or an array of JSON objects"
}

func (v jsonResourceSpec) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (jsonResourceSpec) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	doc, err := jsonattr.Decode(req.ConfigValue.ValueString())
	if err == nil {
		switch x := doc.(type) {
		case map[string]any:
			return
		case []any:
			for _, item := range x {
				if _, ok := item.(map[string]any); !ok {
					err = fmt.Errorf("is an array with an item that is not an object")
					break
				}
			}
			if err == nil {
				return
			}
		default:
			err = fmt.Errorf("is neither an object nor an array of objects")
		}
	}
	resp.Diagnostics.AddAttributeError(req.Path, "Invalid JSON resource specification",
		fmt.Sprintf("%s %s. Write it with jsonencode({\"prefect.resource.role\" = \"flow\"}), or a list of such objects.", req.Path, err))
}

// caseInsensitivePlan plans the state's spelling of a configured ID that
// differs only in case; the server stores UUIDs in lower case.
type caseInsensitivePlan struct{}

func (caseInsensitivePlan) Description(context.Context) string {
	return "Keeps the value in state when the configured one differs only in letter case."
}

func (m caseInsensitivePlan) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (caseInsensitivePlan) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.StateValue.IsNull() || req.StateValue.IsUnknown() {
		return
	}
	if strings.EqualFold(req.ConfigValue.ValueString(), req.StateValue.ValueString()) {
		resp.PlanValue = req.StateValue
	}
}

// requirePlan plans the state's require when the configured one means the
// same, e.g. "2" and 2.
type requirePlan struct{}

func (requirePlan) Description(context.Context) string {
	return "Keeps the value in state when the configured require means the same number or word."
}

func (m requirePlan) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (requirePlan) PlanModifyDynamic(_ context.Context, req planmodifier.DynamicRequest, resp *planmodifier.DynamicResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnderlyingValueUnknown() || req.StateValue.IsNull() || req.StateValue.IsUnknown() {
		return
	}
	c, err := requireValue(req.ConfigValue)
	if err != nil {
		return
	}
	if s, err := requireValue(req.StateValue); err == nil && fmt.Sprint(c) == fmt.Sprint(s) {
		resp.PlanValue = req.StateValue
	}
}
