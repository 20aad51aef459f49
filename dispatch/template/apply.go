package template

import (
	"encoding/json"
	"fmt"
	"strings"
)

// LookupEnv reads the dispatcher's environment for {{ $NAME }} placeholders;
// os.LookupEnv fits. A nil LookupEnv means an empty environment.
type LookupEnv func(name string) (value string, ok bool)

func (e LookupEnv) get(name string) (string, bool) {
	if e == nil {
		return "", false
	}
	return e(name)
}

// applyValues is prefect.utilities.templating.apply_values with
// remove_notset=True, the way workers call it:
//
//   - a string that is exactly one standard placeholder becomes the value it
//     names, keeping its type; when the value is missing, ok is false and the
//     enclosing map key or list item is dropped;
//   - otherwise each standard placeholder is replaced by str(value), or by ""
//     when missing, and each {{ $NAME }} by the environment variable (or "");
//     block and variable placeholders are left for later passes; replacement
//     is a single pass, so inserted text is never scanned again;
//   - maps and lists are walked; other values are returned unchanged.
//
// Values are looked up with dotted paths ("env.FOO", "list[0]") as
// get_from_dict does. The template is not modified.
func applyValues(f placeholderFinder, tree any, values map[string]any, env LookupEnv) (any, bool, error) {
	switch t := tree.(type) {
	case string:
		phs := f.find(t)
		if len(phs) == 0 {
			return t, true, nil
		}
		if p, ok := whole(t, phs); ok && p.Kind == Standard {
			v, found := getFromDict(values, p.Name)
			if !found {
				return nil, false, nil
			}
			return deepCopy(v), true, nil
		}
		return f.replace(t, func(p placeholder) (string, bool) {
			switch p.Kind {
			case Standard:
				if v, found := getFromDict(values, p.Name); found {
					return pyStr(v), true
				}
				return "", true
			case EnvVar:
				if v, found := env.get(strings.TrimLeft(p.Name, envVarPrefix)); found {
					return v, true
				}
				return "", true
			default:
				return "", false
			}
		}), true, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			v := t[k]
			nv, ok, err := applyValues(f, v, values, env)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out[k] = nv
			}
		}
		return out, true, nil
	case []any:
		out := make([]any, 0, len(t))
		for _, v := range t {
			nv, ok, err := applyValues(f, v, values, env)
			if err != nil {
				return nil, false, err
			}
			if ok {
				out = append(out, nv)
			}
		}
		return out, true, nil
	default:
		if !isJSONScalar(t) {
			return nil, false, fmt.Errorf("unexpected template value of type %T", t)
		}
		return t, true, nil
	}
}

func isJSONScalar(v any) bool {
	switch v.(type) {
	case nil, bool, string, json.Number, float64, int, int64:
		return true
	}
	return false
}
