package template

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Input is what Render needs for one flow run. Trees must be JSON decoded
// with json.Decoder.UseNumber (see the package documentation); Render never
// modifies them.
type Input struct {
	// BaseJobTemplate is the work pool's base_job_template, with
	// "job_configuration" and "variables" (a JSON schema whose properties'
	// non-null defaults are the starting job variables).
	BaseJobTemplate map[string]any
	// DeploymentJobVariables are the deployment's job_variables; nil when the
	// flow run has no deployment.
	DeploymentJobVariables map[string]any
	// FlowRunJobVariables are the flow run's job_variables.
	FlowRunJobVariables map[string]any
	// Env answers {{ $NAME }} placeholders from the dispatcher's environment.
	Env LookupEnv
}

// ConfigError reports a base job template, job variables or rendered job
// configuration that Prefect's worker would reject too. Retrying does not
// help; the template or the job variables must change.
type ConfigError struct {
	// Field is the job configuration field or job variable concerned, if any.
	Field string
	// Reason says what is wrong, without quoting values.
	Reason string
}

// Error names the field and the reason.
func (e *ConfigError) Error() string {
	if e.Field == "" {
		return "invalid job configuration: " + e.Reason
	}
	return fmt.Sprintf("invalid job configuration field %q: %s", e.Field, e.Reason)
}

// Render builds a flow run's job configuration the way Prefect's
// BaseJobConfiguration.resolve_for_flow_run does before
// prepare_for_flow_run:
//
//  1. job variables: the deployment's, then the flow run's on top; when the
//     deployment's env is an object, the flow run's env is merged into it
//     instead of replacing it;
//  2. from_template_and_values: non-null defaults of the variables schema,
//     with a default env merged into (or replacing) job_configuration.env;
//     dotted keys such as "env.FOO" expanded into nested objects (a nested
//     key wins over a dotted one); the job variables replace the defaults
//     key by key, except that env is merged into an object-valued
//     job_configuration.env; then apply_values, block document references
//     and Prefect variables are resolved in that order;
//  3. the generic BaseJobConfiguration fields are checked and coerced as
//     pydantic does: command (string or null, "" becomes null), env (object;
//     values become str(value) except null), labels (object of strings),
//     name (string or null). They are always present in the result; every
//     other key is kept as rendered.
//
// Block and variable lookups go through r, which may be nil for templates
// without such placeholders. Errors are *ConfigError or *ResolveError.
func Render(ctx context.Context, in Input, r Resolver) (map[string]any, error) {
	values, err := mergeJobVariables(in.DeploymentJobVariables, in.FlowRunJobVariables)
	if err != nil {
		return nil, err
	}
	base, err := prepareTemplate(in.BaseJobTemplate, values)
	if err != nil {
		return nil, err
	}
	f := newPlaceholderFinder()
	populated, _, err := applyValues(f, base.config, base.variables, in.Env)
	if err != nil {
		return nil, &ConfigError{Reason: err.Error()}
	}
	res := newResolution(r, f)
	if populated, err = res.blocks(ctx, populated); err != nil {
		return nil, err
	}
	if populated, err = res.variables(ctx, populated); err != nil {
		return nil, err
	}
	return baseJobConfiguration(populated.(map[string]any))
}

// mergeJobVariables merges the deployment's and the flow run's job variables
// as resolve_for_flow_run does.
func mergeJobVariables(deployment, flowRun map[string]any) (map[string]any, error) {
	values := make(map[string]any, len(deployment)+len(flowRun))
	for k, v := range deployment {
		values[k] = deepCopy(v)
	}
	runVars := make(map[string]any, len(flowRun))
	for k, v := range flowRun {
		runVars[k] = deepCopy(v)
	}
	if depEnv, ok := values["env"].(map[string]any); ok {
		if runEnv, has := runVars["env"]; has {
			delete(runVars, "env")
			merged, err := dictUpdate(depEnv, runEnv)
			if err != nil {
				return nil, &ConfigError{Field: "env", Reason: "the flow run's env job variable cannot be merged into the deployment's: " + err.Error() + "; make it an object"}
			}
			values["env"] = merged
		}
	}
	for k, v := range runVars {
		values[k] = v
	}
	return values, nil
}

// dictUpdate is Python's dict(dst).update(src): src is an object, or a list
// of [key, value] pairs or two-character strings.
func dictUpdate(dst map[string]any, src any) (map[string]any, error) {
	out := union(dst, nil)
	switch s := src.(type) {
	case map[string]any:
		return union(dst, s), nil
	case string:
		if s != "" {
			return nil, errors.New("it is a non-empty string")
		}
	case []any:
		for i, elem := range s {
			switch e := elem.(type) {
			case []any:
				if len(e) != 2 {
					return nil, fmt.Errorf("element %d has %d items, want 2", i, len(e))
				}
				key, ok := e[0].(string)
				if !ok {
					return nil, fmt.Errorf("element %d has a key that is %s, want a string", i, typeName(e[0]))
				}
				out[key] = e[1]
			case string:
				runes := []rune(e)
				if len(runes) != 2 {
					return nil, fmt.Errorf("element %d is a string of length %d, want 2", i, len(runes))
				}
				out[string(runes[0])] = string(runes[1])
			default:
				return nil, fmt.Errorf("element %d is %s, want a [key, value] pair", i, typeName(elem))
			}
		}
	default:
		return nil, fmt.Errorf("it is %s", typeName(src))
	}
	return out, nil
}

type preparedTemplate struct {
	config    map[string]any
	variables map[string]any
}

// prepareTemplate is from_template_and_values up to apply_values.
func prepareTemplate(tpl map[string]any, values map[string]any) (preparedTemplate, error) {
	rawConfig, ok := tpl["job_configuration"]
	if !ok {
		return preparedTemplate{}, &ConfigError{Field: "job_configuration", Reason: "the base job template has no job_configuration"}
	}
	config, ok := deepCopy(rawConfig).(map[string]any)
	if !ok {
		return preparedTemplate{}, &ConfigError{Field: "job_configuration", Reason: fmt.Sprintf("the base job template's job_configuration is %s, want an object", typeName(rawConfig))}
	}
	rawSchema, ok := tpl["variables"]
	if !ok {
		return preparedTemplate{}, &ConfigError{Field: "variables", Reason: "the base job template has no variables schema"}
	}
	schema, ok := rawSchema.(map[string]any)
	if !ok {
		return preparedTemplate{}, &ConfigError{Field: "variables", Reason: fmt.Sprintf("the base job template's variables is %s, want an object", typeName(rawSchema))}
	}
	variables, err := configDefaults(schema)
	if err != nil {
		return preparedTemplate{}, err
	}

	// A default env is merged into job_configuration.env before the job
	// variables replace the defaults.
	if defEnv := variables["env"]; truthy(defEnv) {
		if confEnv, ok := config["env"].(map[string]any); ok {
			defEnvMap, ok := defEnv.(map[string]any)
			if !ok {
				return preparedTemplate{}, &ConfigError{Field: "env", Reason: fmt.Sprintf("the default of the env variable is %s and cannot be merged into job_configuration.env", typeName(defEnv))}
			}
			config["env"] = union(confEnv, defEnvMap)
		} else {
			config["env"] = deepCopy(defEnv)
		}
	}

	transformed, err := expandDottedKeys(values)
	if err != nil {
		return preparedTemplate{}, err
	}
	for k, v := range transformed {
		variables[k] = v
	}

	if confEnv, ok := config["env"].(map[string]any); ok && truthy(variables["env"]) {
		envMap, ok := variables["env"].(map[string]any)
		if !ok {
			return preparedTemplate{}, &ConfigError{Field: "env", Reason: fmt.Sprintf("the env job variable is %s and cannot be merged into job_configuration.env; make it an object", typeName(variables["env"]))}
		}
		config["env"] = union(confEnv, envMap)
	}
	return preparedTemplate{config: config, variables: variables}, nil
}

// configDefaults is _get_base_config_defaults: every property's default
// that is present and not null.
func configDefaults(schema map[string]any) (map[string]any, error) {
	defaults := map[string]any{}
	rawProps, ok := schema["properties"]
	if !ok {
		return defaults, nil
	}
	props, ok := rawProps.(map[string]any)
	if !ok {
		return nil, &ConfigError{Field: "variables.properties", Reason: fmt.Sprintf("is %s, want an object", typeName(rawProps))}
	}
	for _, name := range sortedKeys(props) {
		rawAttrs := props[name]
		attrs, ok := rawAttrs.(map[string]any)
		if !ok {
			return nil, &ConfigError{Field: "variables.properties." + name, Reason: fmt.Sprintf("is %s, want an object", typeName(rawAttrs))}
		}
		if d, ok := attrs["default"]; ok && d != nil {
			defaults[name] = deepCopy(d)
		}
	}
	return defaults, nil
}

// expandDottedKeys turns "env.FOO"-style keys into nested objects, then lays
// the plain keys over them: a plain object deep-merges over the dotted ones
// (nested format wins), anything else replaces them.
//
// Prefect handles dotted keys in the JSON order of the job variables; Go maps
// have none, so they are taken in sorted order. The result differs only for
// conflicting dotted keys such as "a.b" with "a.b.c" (an error here whenever
// "a.b" is not an object) or "a[0]" with "a.0".
func expandDottedKeys(values map[string]any) (map[string]any, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.Contains(k, ".") {
			continue
		}
		if err := setInDict(out, k, values[k]); err != nil {
			return nil, &ConfigError{Field: k, Reason: err.Error() + "; the job variables set both a value and a key inside it"}
		}
	}
	for _, k := range keys {
		if strings.Contains(k, ".") {
			continue
		}
		v := values[k]
		existing, eok := out[k].(map[string]any)
		vm, vok := v.(map[string]any)
		if eok && vok {
			out[k] = deepMerge(existing, vm)
		} else {
			out[k] = v
		}
	}
	return out, nil
}

// baseJobConfiguration validates and coerces the fields BaseJobConfiguration
// declares, as cls(**populated_configuration) does.
func baseJobConfiguration(populated map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(populated)+4)
	for k, v := range populated {
		out[k] = v
	}

	switch v := out["command"].(type) {
	case nil:
		out["command"] = nil
	case string:
		if v == "" {
			out["command"] = nil
		}
	default:
		return nil, &ConfigError{Field: "command", Reason: fmt.Sprintf("is %s, want a string or null", typeName(v))}
	}

	if raw, present := out["env"]; !present {
		out["env"] = map[string]any{}
	} else {
		env, ok := raw.(map[string]any)
		if !ok {
			return nil, &ConfigError{Field: "env", Reason: fmt.Sprintf("is %s, want an object", typeName(raw))}
		}
		coerced := make(map[string]any, len(env))
		for k, v := range env {
			if v == nil {
				coerced[k] = nil
			} else {
				coerced[k] = pyStr(v)
			}
		}
		out["env"] = coerced
	}

	if raw, present := out["labels"]; !present {
		out["labels"] = map[string]any{}
	} else {
		labels, ok := raw.(map[string]any)
		if !ok {
			return nil, &ConfigError{Field: "labels", Reason: fmt.Sprintf("is %s, want an object of strings", typeName(raw))}
		}
		for _, k := range sortedKeys(labels) {
			v := labels[k]
			if _, ok := v.(string); !ok {
				return nil, &ConfigError{Field: "labels", Reason: fmt.Sprintf("label %q is %s, want a string", k, typeName(v))}
			}
		}
	}

	switch v := out["name"].(type) {
	case nil:
		out["name"] = nil
	case string:
	default:
		return nil, &ConfigError{Field: "name", Reason: fmt.Sprintf("is %s, want a string or null", typeName(v))}
	}
	return out, nil
}
