package ecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// The defaults of prefect-aws's ECS worker.
const (
	defaultContainerName = "prefect"
	defaultCPU           = 1024
	defaultMemory        = 2048
	defaultLaunchType    = "FARGATE"
	defaultFamily        = "prefect"
)

// jobConfig is the ECS job configuration (ECSJobConfiguration) read from a
// dispatch.Job's rendered and prepared configuration.
type jobConfig struct {
	env             map[string]any // values are strings; nil means unset
	labels          map[string]any
	command         string
	taskDefinition  map[string]any
	taskRunRequest  map[string]any
	credentials     map[string]any
	cluster         string
	containerName   string
	vpcID           string
	network         map[string]any
	cloudwatchLogs  bool
	cloudwatchOpts  map[string]any
	cloudwatchPre   string
	autoDeregister  bool
	matchLatest     bool
	apiKeySecret    string
	authSecret      string
	executionRole   string
	workPoolName    string
	familyRunSuffix string // deployment id, else flow id
}

// parseJobConfig reads the configuration and applies ECSJobConfiguration's
// validators and the ECS part of prepare_for_flow_run: the API key and auth
// string move out of env when their secret ARNs are set. The input is not
// modified.
func parseJobConfig(cfg map[string]any) (*jobConfig, error) {
	cfg = deepCopy(cfg).(map[string]any)
	c := &jobConfig{
		env:            asMap(cfg["env"]),
		labels:         asMap(cfg["labels"]),
		command:        asString(cfg["command"]),
		taskDefinition: asMap(cfg["task_definition"]),
		taskRunRequest: asMap(cfg["task_run_request"]),
		credentials:    asMap(cfg["aws_credentials"]),
		cluster:        asString(cfg["cluster"]),
		containerName:  asString(cfg["container_name"]),
		vpcID:          asString(cfg["vpc_id"]),
		network:        asMap(cfg["network_configuration"]),
		cloudwatchLogs: truthy(cfg["configure_cloudwatch_logs"]),
		cloudwatchOpts: asMap(cfg["cloudwatch_logs_options"]),
		cloudwatchPre:  asString(cfg["cloudwatch_logs_prefix"]),
		autoDeregister: truthy(cfg["auto_deregister_task_definition"]),
		matchLatest:    truthy(cfg["match_latest_revision_in_family"]),
		apiKeySecret:   asString(cfg["prefect_api_key_secret_arn"]),
		authSecret:     asString(cfg["prefect_api_auth_string_secret_arn"]),
		executionRole:  asString(cfg["execution_role_arn"]),
	}
	if c.apiKeySecret != "" {
		delete(c.env, "PREFECT_API_KEY")
	}
	if c.authSecret != "" {
		delete(c.env, "PREFECT_API_AUTH_STRING")
	}
	if !truthy(c.taskRunRequest["taskDefinition"]) && len(c.taskDefinition) == 0 {
		return nil, errors.New("the job configuration has neither a task_definition nor a task_definition_arn; set the task_definition_arn job variable or restore task_definition in the pool's base job template")
	}
	if c.containerName == "" {
		c.containerName = containerNameFrom(c.taskDefinition)
	}
	defs := asList(c.taskDefinition["containerDefinitions"])
	if len(defs) > 0 {
		allOff := true
		for _, d := range defs {
			if e, ok := asMap(d)["essential"].(bool); !ok || e {
				allOff = false
			}
		}
		if allOff {
			return nil, errors.New("no container in the task definition is essential; mark at least one containerDefinitions entry \"essential\": true")
		}
	}
	if c.cloudwatchLogs && c.executionRole == "" && !truthy(c.taskRunRequest["taskDefinition"]) && !truthy(c.taskDefinition["executionRoleArn"]) {
		return nil, errors.New("configure_cloudwatch_logs needs an execution role; set the execution_role_arn job variable to a role allowed to write CloudWatch logs")
	}
	if len(c.cloudwatchOpts) > 0 && !c.cloudwatchLogs {
		return nil, errors.New("cloudwatch_logs_options is set but configure_cloudwatch_logs is not; set configure_cloudwatch_logs to true")
	}
	if len(c.network) > 0 && c.vpcID == "" {
		return nil, errors.New("network_configuration is set without vpc_id; set the vpc_id job variable to the VPC of its subnets")
	}
	return c, nil
}

// secretEnv reports whether name is an env variable the configuration
// moves into the container's secrets.
func (c *jobConfig) secretEnv(name string) bool {
	return (name == "PREFECT_API_KEY" && c.apiKeySecret != "") || (name == "PREFECT_API_AUTH_STRING" && c.authSecret != "")
}

// containerNameFrom is _container_name_from_task_definition: "prefect" when
// such a container exists, else the first container's name, else "".
func containerNameFrom(td map[string]any) string {
	defs := asList(td["containerDefinitions"])
	if findContainer(defs, defaultContainerName) != nil {
		return defaultContainerName
	}
	if len(defs) > 0 {
		return asString(asMap(defs[0])["name"])
	}
	return ""
}

// findContainer returns the container (definition or override) named name.
func findContainer(containers []any, name string) map[string]any {
	for _, c := range containers {
		if m := asMap(c); m != nil && asString(m["name"]) == name {
			return m
		}
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return nil
	}
	return m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// asString returns v as Python's str() would for the scalars a rendered
// configuration holds; nil is "".
func asString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		if x == float64(int64(x)) {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int32:
		return strconv.Itoa(int(x))
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// truthy is Python's bool() for JSON values.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case float64:
		return x != 0
	case int:
		return x != 0
	case int32:
		return x != 0
	case int64:
		return x != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// deepCopy copies a JSON-shaped value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return m
	}
	return v
}

// dropEmptyKeys is _drop_empty_keys_from_dict: it removes keys whose value
// is None, "", 0, [] or {} (but not false) from m and, recursively, from
// the maps inside it and inside its lists. A map emptied by the recursion
// stays, as in Python.
func dropEmptyKeys(m map[string]any) {
	for _, k := range sortedKeys(m) {
		v := m[k]
		if _, isBool := v.(bool); !truthy(v) && !isBool {
			delete(m, k)
		}
		switch x := v.(type) {
		case map[string]any:
			dropEmptyKeys(x)
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					dropEmptyKeys(em)
				}
			}
		}
	}
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
