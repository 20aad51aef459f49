package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ValidationError reports job variables that Prefect's server would reject
// for a flow run, or a variables schema it would refuse to validate with.
type ValidationError struct {
	// Variable is the top-level job variable at fault; empty when the work
	// pool's variables schema itself is at fault.
	Variable string
	// Path locates the offending value, as in "env.FOO" or
	// "capacity_provider_strategy[0].weight"; empty when it is the variable
	// itself. For a schema error it locates the fault in the schema.
	Path string
	// Pool and Deployment are the names given to Validate.
	Pool, Deployment string
	// Reason says what is wrong without quoting the value.
	Reason string
	// Fix says what to change.
	Fix string
}

// Error names the variable, the pool, the deployment and the fix.
func (e *ValidationError) Error() string {
	at := ""
	if e.Path != "" {
		at = " at " + e.Path
	}
	if e.Variable == "" {
		return fmt.Sprintf("cannot check the job variables of deployment %q: the variables schema in the base job template of work pool %q is invalid%s: %s; %s",
			e.Deployment, e.Pool, at, e.Reason, e.Fix)
	}
	return fmt.Sprintf("job variable %q%s of deployment %q does not fit work pool %q: %s; %s",
		e.Variable, at, e.Deployment, e.Pool, e.Reason, e.Fix)
}

const (
	fixValue    = "fix the value in the deployment's or the flow run's job_variables, or change the variables schema in the work pool's base job template"
	fixRequired = "set it in the deployment's or the flow run's job_variables, or give it a default in the work pool's base job template"
	fixSchema   = "fix the work pool's base job template"
)

// Validate checks a flow run's job variables against a work pool's variables
// schema (base_job_template["variables"]) the way Prefect's server does when
// a flow run is created for a deployment
// (validate_job_variables_for_deployment_flow_run):
//
//   - an empty schema accepts everything;
//   - the schema must be a valid JSON Schema (Draft 2020-12);
//   - every default is checked alone against the schema as written, and
//     invalid defaults are ignored; if any is, required variables are not
//     enforced, since the ignored default may have been what satisfied them;
//   - the defaults, overlaid by jobVariables, are validated against the schema
//     after Prefect's preprocessing (optional typed properties also accept
//     null, tuple "items" become "prefixItems", block types also accept
//     {"$ref": ...}). Formats are asserted only when checking defaults, as
//     Prefect passes its format checker only there.
//
// jobVariables are the deployment's job variables updated key by key with
// the flow run's: the server validates them that way, without the env merge
// Render performs. Defaults that reference a block document by "$ref" are
// validated as the reference, not as the block's data. The error is a
// *ValidationError naming the variable, the pool and the deployment.
func Validate(variablesSchema, jobVariables map[string]any, pool, deployment string) error {
	return validate(nil, variablesSchema, jobVariables, pool, deployment, false)
}

// ValidateDeployment checks a deployment's own job variables the way
// Prefect's server does when the deployment is created or updated
// (validate_job_variables_for_deployment): as Validate does, except that
// required variables are not enforced, since a flow run may still supply
// them, and that empty job variables are not checked at all.
func ValidateDeployment(variablesSchema, jobVariables map[string]any, pool, deployment string) error {
	if len(jobVariables) == 0 {
		return nil
	}
	return validate(nil, variablesSchema, jobVariables, pool, deployment, true)
}

// ValidateFlowRun validates what the server validates when a flow run of a
// deployment is created: the deployment's job variables updated key by key
// with the flow run's (no env merge), against the pool's variables schema.
func ValidateFlowRun(variablesSchema, deploymentJobVariables, flowRunJobVariables map[string]any, pool, deployment string) error {
	return (*Schemas)(nil).ValidateFlowRun(variablesSchema, deploymentJobVariables, flowRunJobVariables, pool, deployment)
}

// Schemas remembers compiled variables schemas, so that validating many
// runs of a pool compiles its schema once, not once per run (compiling
// costs far more than validating). The zero value is ready to use; a nil
// *Schemas compiles every time. It is safe for concurrent use.
type Schemas struct {
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

// maxSchemas bounds what a Schemas keeps: a dispatcher sees a few pools'
// schemas, each in a few variants (with and without required variables).
const maxSchemas = 64

// ValidateFlowRun is the package's ValidateFlowRun with compiled schemas
// remembered.
func (c *Schemas) ValidateFlowRun(variablesSchema, deploymentJobVariables, flowRunJobVariables map[string]any, pool, deployment string) error {
	return validate(c, variablesSchema, union(deploymentJobVariables, flowRunJobVariables), pool, deployment, false)
}

// compile returns the compiled schema, from memory when the same schema
// (by content) was compiled before.
func (c *Schemas) compile(schema map[string]any, assertFormats bool) (*jsonschema.Schema, error) {
	if c == nil {
		return compileSchema(schema, assertFormats)
	}
	data, err := json.Marshal(schema)
	if err != nil {
		return compileSchema(schema, assertFormats)
	}
	key := fmt.Sprintf("%t/%s", assertFormats, data)
	c.mu.Lock()
	sch, ok := c.compiled[key]
	c.mu.Unlock()
	if ok {
		return sch, nil
	}
	sch, err = compileSchema(schema, assertFormats)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.compiled == nil || len(c.compiled) >= maxSchemas {
		c.compiled = map[string]*jsonschema.Schema{}
	}
	c.compiled[key] = sch
	return sch, nil
}

func validate(schemas *Schemas, variablesSchema, jobVariables map[string]any, pool, deployment string, ignoreRequired bool) error {
	if len(variablesSchema) == 0 {
		return nil
	}
	fail := func(variable, path, reason string) error {
		fix := fixValue
		switch {
		case variable == "":
			fix = fixSchema
		case reason == reasonRequired:
			fix = fixRequired
		}
		return &ValidationError{Variable: variable, Path: path, Pool: pool, Deployment: deployment, Reason: reason, Fix: fix}
	}
	schemaFail := func(err error) error {
		var se *jsonschema.SchemaValidationError
		var ve *jsonschema.ValidationError
		if errors.As(err, &se) && errors.As(se.Err, &ve) {
			_, _, reason := describe(ve)
			return &ValidationError{Path: schemaPath(ve), Pool: pool, Deployment: deployment, Reason: reason, Fix: fixSchema}
		}
		return fail("", "", err.Error())
	}

	raw := deepCopyMap(variablesSchema)
	delete(raw, "$schema") // Prefect always validates as Draft 2020-12
	noRequired := removeNestedKeys(raw, "required").(map[string]any)
	if _, err := schemas.compile(raw, false); err != nil {
		return schemaFail(err)
	}
	defaultsSchema, err := schemas.compile(noRequired, true)
	if err != nil {
		return schemaFail(err)
	}

	all := map[string]any{}
	invalidDefaults := false
	var blockDefaults []string // defaults that reference a block document
	if props, ok := raw["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			attrs, ok := props[name].(map[string]any)
			if !ok {
				return fail(name, "", "its schema in the work pool's variables is not an object")
			}
			d, ok := attrs["default"]
			if !ok {
				continue
			}
			if ref, isMap := d.(map[string]any); isMap {
				if r, hasRef := ref["$ref"]; hasRef {
					if rm, ok := r.(map[string]any); ok {
						if rm["block_document_id"] != nil {
							blockDefaults = append(blockDefaults, name)
						}
						// Prefect skips a reference without a block document id,
						// and validates the block's data in place of the others.
						continue
					}
				}
			}
			if defaultsSchema.Validate(map[string]any{name: d}) != nil {
				invalidDefaults = true
				continue
			}
			all[name] = d
		}
	}
	for k, v := range jobVariables {
		all[k] = v
	}

	processed, perr := preprocessSchema(raw, true)
	if perr != nil {
		return fail(perr.variable, "", perr.reason)
	}
	// The block a default references is not read here; its variable counts
	// as set, unless the job variables set it.
	var satisfied []string
	for _, name := range blockDefaults {
		if _, set := jobVariables[name]; !set {
			satisfied = append(satisfied, name)
		}
	}
	processed = withoutRequired(processed, satisfied)
	if invalidDefaults || ignoreRequired {
		processed = removeNestedKeys(processed, "required").(map[string]any)
	}
	sch, cerr := schemas.compile(processed, false)
	if cerr != nil {
		return schemaFail(cerr)
	}
	verr := sch.Validate(all)
	if verr == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(verr, &ve) {
		return fail("", "", verr.Error())
	}
	variable, path, reason := describe(ve)
	return fail(variable, path, reason)
}

// withoutRequired removes names from the schema's top-level required list.
func withoutRequired(schema map[string]any, names []string) map[string]any {
	list, ok := schema["required"].([]any)
	if !ok || len(names) == 0 {
		return schema
	}
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	kept := make([]any, 0, len(list))
	for _, r := range list {
		if s, ok := r.(string); !ok || !drop[s] {
			kept = append(kept, r)
		}
	}
	schema["required"] = kept
	return schema
}

// compileSchema compiles a variables schema as Draft 2020-12 without ever
// fetching a remote reference. With assertFormats it asserts the formats
// Python's jsonschema asserts: Prefect passes its format checker when it
// checks defaults, not when it validates the job variables.
func compileSchema(schema map[string]any, assertFormats bool) (*jsonschema.Schema, error) {
	schema = breakDanglingRefs(deepCopyMap(schema))
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noFetch{})
	if assertFormats {
		c.AssertFormat()
		for _, f := range pythonFormats() {
			c.RegisterFormat(f)
		}
	}
	const loc = "urn:pushpool:work-pool-variables"
	if err := c.AddResource(loc, schema); err != nil {
		return nil, fmt.Errorf("load the variables schema: %w", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("compile the variables schema: %w", err)
	}
	return sch, nil
}

// noFetch never fetches a remote reference: like Prefect's non-fetching
// registry, a reference that cannot be resolved fails only the values that
// reach it.
type noFetch struct{}

func (noFetch) Load(string) (any, error) {
	return false, nil
}

// unresolvable is where breakDanglingRefs points references that go nowhere.
const unresolvable = "$pushpool-unresolvable"

// breakDanglingRefs points every local reference ("#/...") that resolves to
// nothing in schema at a false schema, so that, as in Python, it fails the
// values that reach it instead of the whole schema.
func breakDanglingRefs(schema map[string]any) map[string]any {
	dangling := false
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
				if _, found := resolvePointer(schema, strings.TrimPrefix(ref, "#")); !found {
					v["$ref"] = "#/" + unresolvable
					dangling = true
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(schema)
	if dangling {
		schema[unresolvable] = false
	}
	return schema
}

// resolvePointer follows a JSON pointer (RFC 6901, possibly percent-encoded
// as a URI fragment) from root.
func resolvePointer(root any, ptr string) (any, bool) {
	if decoded, err := url.PathUnescape(ptr); err == nil {
		ptr = decoded
	}
	if ptr == "" {
		return root, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false // an anchor; leave it to the library
	}
	v := root
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[tok]
			if !ok {
				return nil, false
			}
			v = x
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// pythonFormats overrides the library's formats where Python's jsonschema
// (as installed with Prefect) asserts nothing or something simpler.
func pythonFormats() []*jsonschema.Format {
	none := func(any) error { return nil }
	hasAt := func(v any) error {
		if s, ok := v.(string); ok && !strings.Contains(s, "@") {
			return errors.New("missing @")
		}
		return nil
	}
	out := []*jsonschema.Format{
		{Name: "email", Validate: hasAt},
		{Name: "idn-email", Validate: hasAt},
	}
	for _, name := range []string{"duration", "period", "hostname", "uri", "iri", "uri-reference", "iri-reference", "uri-template", "semver"} {
		out = append(out, &jsonschema.Format{Name: name, Validate: none})
	}
	return out
}

// removeNestedKeys is prefect.utilities.collections.remove_nested_keys: it
// drops the key from every object reachable through objects only (lists are
// not entered).
func removeNestedKeys(v any, key string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		if k != key {
			out[k] = removeNestedKeys(x, key)
		}
	}
	return out
}

type schemaError struct {
	variable, reason string
}

// preprocessSchema is prefect.utilities.schema_tools.validation.preprocess_schema.
func preprocessSchema(schema map[string]any, allowNoneWithDefault bool) (map[string]any, *schemaError) {
	schema = deepCopyMap(schema)
	if props, ok := schema["properties"].(map[string]any); ok {
		if err := processProperties(props, schema["required"], allowNoneWithDefault); err != nil {
			return nil, err
		}
	}
	if defs, ok := schema["definitions"].(map[string]any); ok {
		names := sortedKeys(defs)
		snapshot := make([]any, len(names))
		for i, n := range names {
			snapshot[i] = defs[n]
		}
		for _, d := range snapshot {
			def, ok := d.(map[string]any)
			if !ok {
				continue
			}
			if props, ok := def["properties"].(map[string]any); ok {
				if err := processProperties(props, def["required"], allowNoneWithDefault); err != nil {
					return nil, err
				}
			}
			if _, ok := def["block_type_slug"]; ok {
				title, ok := def["title"].(string)
				if !ok {
					return nil, &schemaError{reason: "a block type definition has no title"}
				}
				defs[title] = map[string]any{"oneOf": []any{
					def,
					map[string]any{
						"type": "object",
						"properties": map[string]any{
							"$ref": map[string]any{"oneOf": []any{
								map[string]any{"type": "string", "format": "uuid"},
								map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "minProperties": 1},
							}},
						},
						"required": []any{"$ref"},
					},
				}}
			}
		}
	}
	return schema, nil
}

func processProperties(props map[string]any, required any, allowNoneWithDefault bool) *schemaError {
	requiredNames := map[string]bool{}
	if list, ok := required.([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				requiredNames[s] = true
			}
		}
	}
	for _, key := range sortedKeys(props) {
		s, ok := props[key].(map[string]any)
		if !ok {
			return &schemaError{variable: key, reason: "its schema in the work pool's variables is not an object"}
		}
		// _fix_null_typing: optional typed properties also accept null.
		if t, hasType := s["type"]; hasType && !requiredNames[key] && t != "null" {
			if _, hasDefault := s["default"]; !hasDefault || allowNoneWithDefault {
				s["anyOf"] = []any{map[string]any{"type": t}, map[string]any{"type": "null"}}
				delete(s, "type")
			}
		}
		// _fix_tuple_items: list-valued items are a tuple.
		if items, ok := s["items"].([]any); ok && len(items) > 0 && !truthy(s["prefixItems"]) {
			s["prefixItems"] = deepCopy(items)
			delete(s, "items")
		}
		if nested, ok := s["properties"].(map[string]any); ok {
			if err := processProperties(nested, s["required"], allowNoneWithDefault); err != nil {
				return err
			}
		}
	}
	return nil
}

// describe picks the most specific failure of a validation error tree and
// says which variable it concerns.
func describe(ve *jsonschema.ValidationError) (variable, path, reason string) {
	leaf := ve
	for len(leaf.Causes) > 0 {
		if r, ok := typeAlternatives(leaf); ok {
			return locate(leaf.InstanceLocation, r)
		}
		next := leaf.Causes[0]
		for _, c := range leaf.Causes[1:] {
			if len(c.InstanceLocation) > len(next.InstanceLocation) {
				next = c
			}
		}
		leaf = next
	}
	if req, ok := leaf.ErrorKind.(*kind.Required); ok && len(leaf.InstanceLocation) == 0 && len(req.Missing) > 0 {
		missing := append([]string(nil), req.Missing...)
		sort.Strings(missing)
		return missing[0], "", reasonRequired
	}
	if extra, ok := leaf.ErrorKind.(*kind.AdditionalProperties); ok && len(leaf.InstanceLocation) == 0 && len(extra.Properties) > 0 {
		names := append([]string(nil), extra.Properties...)
		sort.Strings(names)
		return names[0], "", reasonUnknown
	}
	return locate(leaf.InstanceLocation, kindReason(leaf.ErrorKind))
}

const (
	reasonRequired = "it is required and has no value"
	reasonUnknown  = "the variables schema does not define it and allows no other variables"
)

// schemaPath locates the deepest failure of a schema's check against the
// metaschema, as a JSON pointer into the variables schema.
func schemaPath(ve *jsonschema.ValidationError) string {
	leaf := ve
	for len(leaf.Causes) > 0 {
		next := leaf.Causes[0]
		for _, c := range leaf.Causes[1:] {
			if len(c.InstanceLocation) > len(next.InstanceLocation) {
				next = c
			}
		}
		leaf = next
	}
	return "/" + strings.Join(leaf.InstanceLocation, "/")
}

// typeAlternatives summarises an anyOf/oneOf whose branches all failed on
// type alone, as "got string, want integer or null".
func typeAlternatives(ve *jsonschema.ValidationError) (string, bool) {
	switch ve.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
	default:
		return "", false
	}
	var got string
	var wants []string
	for _, c := range ve.Causes {
		t, ok := c.ErrorKind.(*kind.Type)
		if !ok || len(c.Causes) > 0 {
			return "", false
		}
		got = t.Got
		wants = append(wants, t.Want...)
	}
	return fmt.Sprintf("got %s, want %s", got, strings.Join(wants, " or ")), true
}

func locate(loc []string, reason string) (variable, path, out string) {
	switch len(loc) {
	case 0:
		return "", "", reason
	case 1:
		return loc[0], "", reason
	}
	var b strings.Builder
	b.WriteString(loc[0])
	for _, part := range loc[1:] {
		if isIndex(part) {
			fmt.Fprintf(&b, "[%s]", part)
		} else {
			b.WriteString("." + part)
		}
	}
	return loc[0], b.String(), reason
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// kindReason words a failure without the offending value, which may be a
// secret.
func kindReason(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return fmt.Sprintf("does not match the pattern %q", k.Want)
	case *kind.Format:
		return fmt.Sprintf("is not a valid %s", k.Want)
	case *kind.FalseSchema:
		return "no value is allowed here: the schema is false or refers to a definition that cannot be resolved"
	case *kind.Minimum:
		return "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		return "must be at most " + k.Want.RatString()
	case *kind.ExclusiveMinimum:
		return "must be greater than " + k.Want.RatString()
	case *kind.ExclusiveMaximum:
		return "must be less than " + k.Want.RatString()
	case *kind.MultipleOf:
		return "must be a multiple of " + k.Want.RatString()
	default:
		return k.LocalizedString(englishPrinter())
	}
}

func englishPrinter() *message.Printer {
	return message.NewPrinter(language.English)
}
