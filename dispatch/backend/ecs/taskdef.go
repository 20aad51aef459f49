package ecs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ContentHashTag is the tag pushpool puts on the task definitions it
// registers: the hash of their normalised content (see contentHash). A
// later submission with the same content, from any process, finds the
// revision by it and reuses it instead of registering another.
const ContentHashTag = "pushpool.io/content-hash"

// deregisterTag is what prefect-aws tags a run's task with when its
// definition was registered for it and auto_deregister_task_definition is
// set (the misspelling is Prefect's).
const deregisterTag = "prefect.io/degregister-task-definition"

// postRegistrationFields are the fields ECS adds to a registered task
// definition (ECS_POST_REGISTRATION_FIELDS), plus tags, which pushpool adds.
var postRegistrationFields = []string{
	"compatibilities", "taskDefinitionArn", "revision", "status", "requiresAttributes",
	"registeredAt", "registeredBy", "deregisteredAt", "tags",
}

// runInfo is what a task definition and request take from the run besides
// its configuration.
type runInfo struct {
	workPool     string
	deploymentID string
	flowID       string
	region       string
	defaultImage string
}

func (r runInfo) familySuffix() string {
	if r.deploymentID != "" {
		return r.deploymentID
	}
	return r.flowID
}

// maxFamily is the longest task definition family ECS registers.
const maxFamily = 255

// generatedFamily makes the family pushpool names after the pool and the
// deployment one ECS takes: up to 255 letters, digits, hyphens and
// underscores. Prefect's worker means to slugify it but drops the result,
// so a pool named "prod.ecs" or "data team" fails RegisterTaskDefinition
// there on every run. A valid name is kept exactly as the worker writes it,
// so both register into, and reuse, the same family; otherwise each run of
// other characters becomes one hyphen and the name is cut to 255. A family
// the template sets is the user's and goes to ECS as written.
func generatedFamily(name string) string {
	name = familyDisallowed.ReplaceAllString(name, "-")
	if len(name) > maxFamily {
		name = name[:maxFamily]
	}
	return name
}

// prepareTaskDefinition is ECSWorker._prepare_task_definition: the task
// definition to register for the run, built from the configuration's
// task_definition with Prefect's defaults.
func prepareTaskDefinition(c *jobConfig, run runInfo) (map[string]any, error) {
	td := deepCopy(c.taskDefinition).(map[string]any)
	if td == nil {
		td = map[string]any{}
	}
	var defs []any
	for _, d := range asList(td["containerDefinitions"]) {
		if truthy(d) {
			defs = append(defs, d)
		}
	}
	if defs == nil {
		defs = []any{}
	}
	name := c.containerName
	if name == "" {
		name = containerNameFrom(map[string]any{"containerDefinitions": defs})
	}
	if name == "" {
		name = defaultContainerName
	}
	container := findContainer(defs, name)
	if container == nil {
		if name != defaultContainerName {
			return nil, fmt.Errorf("container %q not found in the task definition; set container_name to one of its containerDefinitions or add a container of that name", name)
		}
		for _, d := range defs {
			if m := asMap(d); m != nil {
				if _, ok := m["name"]; !ok {
					m["name"] = name
					container = m
					break
				}
			}
		}
		if container == nil {
			container = map[string]any{"name": name}
			defs = append(defs, container)
		}
	}
	td["containerDefinitions"] = defs
	if _, ok := container["image"]; !ok {
		container["image"] = run.defaultImage
	}
	if envs, ok := container["environment"].([]any); ok {
		kept := []any{}
		for _, e := range envs {
			m := asMap(e)
			if v, set := c.env[asString(m["name"])]; (set && v == nil) || m["value"] == nil {
				continue
			}
			kept = append(kept, e)
		}
		container["environment"] = kept
	}
	if c.cloudwatchLogs {
		prefix := c.cloudwatchPre
		if prefix == "" {
			prefix = "prefect-logs_" + run.workPool + "_" + run.familySuffix()
		}
		opts := map[string]any{
			"awslogs-create-group":  "true",
			"awslogs-group":         "prefect",
			"awslogs-region":        run.region,
			"awslogs-stream-prefix": prefix,
		}
		for k, v := range c.cloudwatchOpts {
			opts[k] = v
		}
		container["logConfiguration"] = map[string]any{"logDriver": "awslogs", "options": opts}
	}
	if !truthy(td["family"]) {
		td["family"] = generatedFamily(defaultFamily + "_" + run.workPool + "_" + run.familySuffix())
	}
	cpu, memory := td["cpu"], td["memory"]
	if !truthy(cpu) {
		cpu = json.Number(strconv.Itoa(defaultCPU))
	}
	if !truthy(memory) {
		memory = json.Number(strconv.Itoa(defaultMemory))
	}
	launchType := asString(c.taskRunRequest["launchType"])
	if launchType == "FARGATE" || launchType == "FARGATE_SPOT" {
		td["cpu"] = asString(cpu)
		td["memory"] = asString(memory)
		reqs := asList(td["requiresCompatibilities"])
		if !slices.ContainsFunc(reqs, func(v any) bool { return v == "FARGATE" }) {
			reqs = append(reqs, "FARGATE")
		}
		td["requiresCompatibilities"] = reqs
		if _, ok := td["networkMode"]; !ok {
			td["networkMode"] = "awsvpc"
		}
	} else {
		for key, v := range map[string]any{"cpu": cpu, "memory": memory} {
			if _, ok := container[key]; ok {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(asString(v)))
			if err != nil {
				return nil, fmt.Errorf("task definition %s %q is not a whole number, which launch type %q needs at container level; set the %s job variable to a number", key, asString(v), launchType, key)
			}
			container[key] = json.Number(strconv.Itoa(n))
		}
	}
	for _, key := range []string{"cpu", "memory"} {
		if truthy(td[key]) {
			td[key] = asString(td[key])
		}
	}
	dropEmptyKeys(td)

	secrets := map[string]string{}
	if c.apiKeySecret != "" {
		secrets["PREFECT_API_KEY"] = c.apiKeySecret
	}
	if c.authSecret != "" {
		secrets["PREFECT_API_AUTH_STRING"] = c.authSecret
	}
	if len(secrets) > 0 {
		if envs, ok := container["environment"].([]any); ok {
			kept := []any{}
			for _, e := range envs {
				if _, moved := secrets[asString(asMap(e)["name"])]; !moved {
					kept = append(kept, e)
				}
			}
			container["environment"] = kept
		}
		list := asList(container["secrets"])
		for _, s := range list {
			m := asMap(s)
			if arn, ok := secrets[asString(m["name"])]; ok {
				m["valueFrom"] = arn
				delete(secrets, asString(m["name"]))
			}
		}
		// Python adds the API key before the auth string.
		for _, n := range []string{"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"} {
			if arn, ok := secrets[n]; ok {
				list = append(list, map[string]any{"name": n, "valueFrom": arn})
			}
		}
		container["secrets"] = list
	}
	return td, nil
}

// validateTaskDefinition is ECSWorker._validate_task_definition: the task
// definition (prepared or existing) must suit the launch type.
func validateTaskDefinition(td map[string]any, c *jobConfig) error {
	if c.cloudwatchLogs && !truthy(td["executionRoleArn"]) {
		return errors.New("configure_cloudwatch_logs needs an execution role but the task definition has none; set execution_role_arn or use a task definition with executionRoleArn")
	}
	launchType := asString(c.taskRunRequest["launchType"])
	strategy := truthy(c.taskRunRequest["capacityProviderStrategy"])
	reqs := asList(td["requiresCompatibilities"])
	requiresEC2 := slices.ContainsFunc(reqs, func(v any) bool { return v == "EC2" })
	if launchType == "" && !strategy && !requiresEC2 {
		launchType = defaultLaunchType
	}
	if strategy && launchType != "FARGATE_SPOT" {
		return nil
	}
	if requiresEC2 && launchType == "" {
		return nil
	}
	if _, ok := td["requiresCompatibilities"]; !ok {
		reqs = []any{defaultLaunchType}
	}
	if launchType != "EC2" && !slices.ContainsFunc(reqs, func(v any) bool { return v == "FARGATE" }) {
		return fmt.Errorf("the task definition does not have FARGATE in requiresCompatibilities and cannot be used with launch type %q; add FARGATE or set launch_type to EC2", launchType)
	}
	if launchType == "FARGATE" || launchType == "FARGATE_SPOT" {
		mode := "awsvpc"
		if m, ok := td["networkMode"]; ok {
			mode = asString(m)
		}
		if mode != "awsvpc" {
			return fmt.Errorf("network mode %q is not compatible with launch type %q; use launch type EC2 or network mode awsvpc", mode, launchType)
		}
	}
	return nil
}

// normalizeTaskDefinition is the homogenisation of
// ECSWorker._task_definitions_equal: networkMode defaults to bridge,
// essential to true, environment and secrets are sorted by name and
// environmentFiles by value, empty keys are dropped and the fields ECS adds
// on registration (and tags) are removed. It returns a new map.
func normalizeTaskDefinition(td map[string]any) map[string]any {
	out := deepCopy(td).(map[string]any)
	if _, ok := out["networkMode"]; !ok {
		out["networkMode"] = "bridge"
	}
	for _, d := range asList(out["containerDefinitions"]) {
		c := asMap(d)
		if c == nil {
			continue
		}
		if _, ok := c["essential"]; !ok {
			c["essential"] = true
		}
		sortBy(c, "environment", "name")
		sortBy(c, "secrets", "name")
		sortBy(c, "environmentFiles", "value")
	}
	dropEmptyKeys(out)
	for _, f := range postRegistrationFields {
		delete(out, f)
	}
	return out
}

func sortBy(c map[string]any, list, key string) {
	l, ok := c[list].([]any)
	if !ok {
		return
	}
	l = slices.Clone(l)
	slices.SortStableFunc(l, func(a, b any) int {
		return strings.Compare(asString(asMap(a)[key]), asString(asMap(b)[key]))
	})
	c[list] = l
}

// contentHash is the hex SHA-256 of the normalised task definition in
// canonical JSON (sorted keys, numbers as written).
func contentHash(td map[string]any) string {
	data, err := json.Marshal(canonicalNumbers(normalizeTaskDefinition(td)))
	if err != nil {
		// Only JSON-shaped values reach here; a failure is a programming error.
		panic("ecs: task definition is not JSON: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// canonicalNumbers writes every number the same way whether it came from a
// template (json.Number) or from the API (float64, int32), so 1024, 1024.0
// and json.Number("1024") hash alike.
func canonicalNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = canonicalNumbers(e)
		}
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}
