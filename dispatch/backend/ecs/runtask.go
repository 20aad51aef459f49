package ecs

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// networkLoader finds the network configuration of awsvpc tasks: the
// subnets of the default VPC or of vpc_id, as the worker does with EC2.
type networkLoader interface {
	// subnets returns the ids of the subnets of vpcID, or of the default
	// VPC when vpcID is empty.
	subnets(ctx context.Context, vpcID string) ([]string, error)
}

// prepareRunTaskRequest is ECSWorker._prepare_task_run_request: the RunTask
// request for the run, from the configuration's task_run_request, the task
// definition it runs and the run's env, labels and command. It does not add
// pushpool's startedBy and clientToken.
func prepareRunTaskRequest(ctx context.Context, c *jobConfig, td map[string]any, tdARN string, newlyRegistered bool, net networkLoader) (map[string]any, error) {
	req := deepCopy(c.taskRunRequest).(map[string]any)
	if req == nil {
		req = map[string]any{}
	}
	if _, ok := req["taskDefinition"]; !ok {
		req["taskDefinition"] = tdARN
	}
	if c.cluster != "" && !truthy(req["cluster"]) {
		req["cluster"] = c.cluster
	}
	reqs := asList(td["requiresCompatibilities"])
	requiresEC2 := slices.ContainsFunc(reqs, func(v any) bool { return v == "EC2" })
	if !truthy(req["launchType"]) {
		if requiresEC2 {
			delete(req, "launchType")
		} else {
			req["launchType"] = defaultLaunchType
		}
	}
	if truthy(req["capacityProviderStrategy"]) {
		delete(req, "launchType")
	} else if req["launchType"] == "FARGATE_SPOT" {
		delete(req, "launchType")
		req["capacityProviderStrategy"] = []any{map[string]any{"capacityProvider": "FARGATE_SPOT", "weight": 1}}
	}
	overrides, hasOverrides := req["overrides"].(map[string]any)
	if !hasOverrides {
		overrides = map[string]any{}
	}
	containerOverrides := asList(overrides["containerOverrides"])

	awsvpc := td["networkMode"] == "awsvpc"
	if awsvpc && !truthy(req["networkConfiguration"]) && len(c.network) == 0 {
		subnets, err := net.subnets(ctx, c.vpcID)
		if err != nil {
			return nil, err
		}
		ids := make([]any, len(subnets))
		for i, s := range subnets {
			ids[i] = s
		}
		req["networkConfiguration"] = map[string]any{"awsvpcConfiguration": map[string]any{
			"subnets": ids, "assignPublicIp": "ENABLED", "securityGroups": []any{},
		}}
	}
	if awsvpc && len(c.network) > 0 && c.vpcID != "" {
		subnets, err := net.subnets(ctx, c.vpcID)
		if err != nil {
			return nil, err
		}
		for _, s := range asList(c.network["subnets"]) {
			if !slices.Contains(subnets, asString(s)) {
				return nil, &subnetsOutsideVPC{subnets: asList(c.network["subnets"]), vpcID: c.vpcID}
			}
		}
		req["networkConfiguration"] = map[string]any{"awsvpcConfiguration": deepCopy(c.network)}
	}

	name := c.containerName
	if name == "" {
		name = containerNameFrom(td)
	}
	if name == "" {
		name = defaultContainerName
	}
	if len(containerOverrides) > 0 {
		if first := asMap(containerOverrides[0]); first != nil && !truthy(first["name"]) {
			first["name"] = name
		}
	}
	orchestration := findContainer(containerOverrides, name)
	if orchestration != nil && c.command != "" {
		orchestration["command"] = c.command
	}
	for _, o := range containerOverrides {
		co := asMap(o)
		if co == nil {
			continue
		}
		if s, ok := co["command"].(string); ok {
			argv, err := splitCommand(s)
			if err != nil {
				return nil, fmt.Errorf("split the command %q into words: %w; fix the quoting of the command job variable", s, err)
			}
			list := make([]any, len(argv))
			for i, a := range argv {
				list[i] = a
			}
			co["command"] = list
		}
		if m, ok := co["environment"].(map[string]any); ok {
			co["environment"] = envList(m)
		}
		kept := []any{}
		for _, e := range asList(co["environment"]) {
			if asMap(e)["value"] != nil {
				kept = append(kept, e)
			}
		}
		co["environment"] = kept
	}
	if m, ok := req["tags"].(map[string]any); ok {
		req["tags"] = tagList(m)
	}
	for _, key := range []string{"cpu", "memory"} {
		if truthy(overrides[key]) {
			overrides[key] = asString(overrides[key])
		}
	}

	var tags []any
	for _, t := range asList(req["tags"]) {
		if _, relabelled := c.labels[asString(asMap(t)["key"])]; !relabelled {
			tags = append(tags, t)
		}
	}
	tags = append(tags, asList(tagList(c.labels))...)
	for i, t := range tags {
		m := asMap(t)
		tags[i] = map[string]any{"key": slugifyTag(asString(m["key"])), "value": slugifyTag(asString(m["value"]))}
	}
	if newlyRegistered && c.autoDeregister {
		tags = append(tags, map[string]any{"key": deregisterTag, "value": "true"})
	}
	if len(tags) > 0 {
		req["tags"] = tags
	}
	if orchestration != nil {
		var env []any
		for _, e := range asList(orchestration["environment"]) {
			if _, own := c.env[asString(asMap(e)["name"])]; !own {
				env = append(env, e)
			}
		}
		env = append(env, envList(c.env)...)
		if len(env) > 0 {
			orchestration["environment"] = env
		}
	}
	// Deliberate difference from prefect-aws: with a secret ARN set, the
	// value never travels as plain env, not even when the env job variable
	// rendered it into an override (the worker only removes it from the
	// configuration's env).
	for _, o := range containerOverrides {
		if co := asMap(o); co != nil {
			if envs, ok := co["environment"].([]any); ok {
				co["environment"] = slices.DeleteFunc(slices.Clone(envs), func(e any) bool { return c.secretEnv(asString(asMap(e)["name"])) })
			}
		}
	}
	if hasOverrides {
		var kept []any
		for _, o := range containerOverrides {
			if truthy(o) {
				kept = append(kept, o)
			}
		}
		if kept == nil {
			kept = []any{}
		}
		overrides["containerOverrides"] = kept
	}
	return req, nil
}

// subnetsOutsideVPC is the error of a network_configuration whose subnets
// are not all in the VPC of vpc_id.
type subnetsOutsideVPC struct {
	subnets []any
	vpcID   string
}

func (e *subnetsOutsideVPC) Error() string {
	return fmt.Sprintf("subnets %v of network_configuration are not all in VPC %s; use subnets of that VPC or set vpc_id to theirs", e.subnets, e.vpcID)
}

// envList turns an env map into ECS's [{name, value}], sorted by name,
// without null values.
func envList(env map[string]any) []any {
	out := []any{}
	for _, k := range sortedKeys(env) {
		if env[k] != nil {
			out = append(out, map[string]any{"name": k, "value": env[k]})
		}
	}
	return out
}

// tagList turns a labels map into ECS's [{key, value}], sorted by key,
// without null values.
func tagList(labels map[string]any) any {
	out := []any{}
	for _, k := range sortedKeys(labels) {
		if labels[k] != nil {
			out = append(out, map[string]any{"key": k, "value": labels[k]})
		}
	}
	return out
}

var (
	tagDisallowed = regexp.MustCompile(`[^a-zA-Z0-9_./=+:@-]`)
	// familyDisallowed is a run of characters a task definition family
	// cannot hold (see generatedFamily).
	familyDisallowed = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)
	dashes           = regexp.MustCompile(`-{2,}`)
	quotes           = regexp.MustCompile(`'+`)
	digitComma       = regexp.MustCompile(`(\d),(\d)`)
	charEntity       = regexp.MustCompile(`&([a-zA-Z][a-zA-Z0-9]*|#\d+|#[xX][0-9a-fA-F]+);`)
)

// slugifyTag is python-slugify's slugify(s, regex_pattern=_TAG_REGEX,
// allow_unicode=True, lowercase=False), which the worker applies to tag
// keys and values: quotes become dashes, the text is NFKC-normalised and
// HTML entities decoded, commas between digits go, every character outside
// [a-zA-Z0-9_./=+:@-] becomes a dash, dash runs collapse and dashes at the
// ends are trimmed.
func slugifyTag(s string) string {
	s = quotes.ReplaceAllString(s, "-")
	s = norm.NFKC.String(s)
	s = charEntity.ReplaceAllStringFunc(s, html.UnescapeString)
	s = norm.NFKC.String(s)
	for {
		t := digitComma.ReplaceAllString(s, "$1$2")
		if t == s {
			break
		}
		s = t
	}
	s = tagDisallowed.ReplaceAllString(s, "-")
	s = dashes.ReplaceAllString(s, "-")
	return strings.Trim(s, "-")
}
