package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is what a Resolver's block lookups wrap when the block document
// does not exist, so Render can say the block was probably deleted.
var ErrNotFound = errors.New("not found")

// Resolver looks up what block and variable placeholders refer to, through
// the Prefect API. The dispatcher implements it with its API client; Render
// calls each method at most once per distinct argument.
type Resolver interface {
	// Variable returns the value of the Prefect variable called name
	// (GET /variables/name/{name}); found is false when there is none, which
	// is not an error.
	Variable(ctx context.Context, name string) (value any, found bool, err error)
	// BlockDocumentByID returns the data of a block document with secrets
	// revealed (GET /block_documents/{id}?include_secrets=true). A missing
	// document is an error wrapping ErrNotFound.
	BlockDocumentByID(ctx context.Context, id string) (data map[string]any, err error)
	// BlockDocumentByName returns the data of the block document of the
	// given type slug and name with secrets revealed
	// (GET /block_types/slug/{slug}/block_documents/name/{name}?include_secrets=true).
	// A missing document is an error wrapping ErrNotFound.
	BlockDocumentByName(ctx context.Context, typeSlug, name string) (data map[string]any, err error)
}

// ResolveError reports a block or variable placeholder that could not be
// resolved. It names the placeholder, never the values involved.
type ResolveError struct {
	// Placeholder is the placeholder as written, or a description of the
	// {"$ref": {"block_document_id": ...}} reference.
	Placeholder string
	// Kind is BlockDocument or Variable.
	Kind Kind
	// Reason says what went wrong when the Resolver did not fail.
	Reason string
	// Err is the Resolver's error, if it failed.
	Err error
}

// Error names the placeholder and the cause.
func (e *ResolveError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "resolve %s", e.Placeholder)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
		if errors.Is(e.Err, ErrNotFound) {
			b.WriteString(" (the block is referenced by the deployment or work pool configuration but no longer exists; it may have been deleted: create it again or change the reference)")
		}
	}
	return b.String()
}

// Unwrap returns the Resolver's error.
func (e *ResolveError) Unwrap() error { return e.Err }

// resolution holds the per-render caches of block documents and variables,
// as resolve_block_document_references and resolve_variables do.
type resolution struct {
	r      Resolver
	f      placeholderFinder
	byID   map[string]map[string]any
	byName map[[2]string]map[string]any
	vars   map[string]variableValue
}

type variableValue struct {
	value any
	found bool
}

func newResolution(r Resolver, f placeholderFinder) *resolution {
	if r == nil {
		r = noResolver{}
	}
	return &resolution{
		r:      r,
		f:      f,
		byID:   map[string]map[string]any{},
		byName: map[[2]string]map[string]any{},
		vars:   map[string]variableValue{},
	}
}

// blocks is resolve_block_document_references: {"$ref": {"block_document_id":
// id}} objects become the block's data, a string that is one block
// placeholder becomes the value it names, and block placeholders inside
// longer strings become str(value).
func (s *resolution) blocks(ctx context.Context, tree any) (any, error) {
	switch t := tree.(type) {
	case map[string]any:
		if ref, has := t["$ref"]; has {
			refMap, ok := ref.(map[string]any)
			if !ok {
				return nil, &ResolveError{Placeholder: `a "$ref" block reference`, Kind: BlockDocument,
					Reason: fmt.Sprintf(`"$ref" is %s, want an object with "block_document_id"`, typeName(ref))}
			}
			if id := refMap["block_document_id"]; truthy(id) {
				return s.blockByID(ctx, id)
			}
		}
		return rebuild(t, func(v any) (any, error) { return s.blocks(ctx, v) })
	case []any:
		return rebuild(t, func(v any) (any, error) { return s.blocks(ctx, v) })
	case string:
		phs := s.f.find(t)
		if !hasKind(phs, BlockDocument) {
			return t, nil
		}
		if p, ok := whole(t, phs); ok {
			return s.blockPlaceholder(ctx, p)
		}
		var firstErr error
		out := s.f.replace(t, func(p placeholder) (string, bool) {
			if p.Kind != BlockDocument || firstErr != nil {
				return "", false
			}
			v, err := s.blockPlaceholder(ctx, p)
			if err != nil {
				firstErr = err
				return "", false
			}
			switch v.(type) {
			case map[string]any, []any:
				firstErr = &ResolveError{Placeholder: p.FullMatch, Kind: BlockDocument,
					Reason: fmt.Sprintf("it resolves to an %s, which cannot be inserted into a longer string; name a scalar attribute instead (e.g. '.value' or '.url')", typeName(v))}
				return "", false
			}
			return pyStr(v), true
		})
		if firstErr != nil {
			return nil, firstErr
		}
		return out, nil
	default:
		return t, nil
	}
}

// rebuild returns a copy of a map or list whose children are replaced by
// visit's results; keys are visited in sorted order, so the first error is
// the same on every run.
func rebuild(tree any, visit func(any) (any, error)) (any, error) {
	switch t := tree.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for _, k := range sortedKeys(t) {
			nv, err := visit(t[k])
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, v := range t {
			nv, err := visit(v)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	}
	return tree, nil
}

func hasKind(phs []placeholder, k Kind) bool {
	for _, p := range phs {
		if p.Kind == k {
			return true
		}
	}
	return false
}

func (s *resolution) blockByID(ctx context.Context, id any) (any, error) {
	idText, ok := id.(string)
	if !ok {
		return nil, &ResolveError{Placeholder: `a "$ref" block reference`, Kind: BlockDocument,
			Reason: fmt.Sprintf("block_document_id is %s, want a UUID string", typeName(id))}
	}
	data, cached := s.byID[idText]
	if !cached {
		var err error
		data, err = s.r.BlockDocumentByID(ctx, idText)
		if err != nil {
			return nil, &ResolveError{Placeholder: fmt.Sprintf("block document reference %q", idText), Kind: BlockDocument, Err: err}
		}
		s.byID[idText] = data
	}
	return deepCopy(map[string]any(data)), nil
}

// blockPlaceholder is _resolve_single_placeholder: the name after
// "prefect.blocks." is <type-slug>.<document-name>[.<keypath>]; a document
// whose only key is "value" stands for that value unless the keypath starts
// with "value".
func (s *resolution) blockPlaceholder(ctx context.Context, p placeholder) (any, error) {
	// Prefect removes every occurrence of the prefix, not only the leading one.
	parts := strings.SplitN(strings.ReplaceAll(p.Name, blockPrefix, ""), ".", 3)
	if len(parts) < 2 {
		return nil, &ResolveError{Placeholder: p.FullMatch, Kind: BlockDocument,
			Reason: "invalid block placeholder; expected prefect.blocks.<block-type-slug>.<block-document-name>"}
	}
	key := [2]string{parts[0], parts[1]}
	doc, cached := s.byName[key]
	if !cached {
		var err error
		doc, err = s.r.BlockDocumentByName(ctx, parts[0], parts[1])
		if err != nil {
			return nil, &ResolveError{Placeholder: p.FullMatch, Kind: BlockDocument, Err: err}
		}
		s.byName[key] = doc
	}
	var data any = doc
	if inner, ok := doc["value"]; ok && len(doc) == 1 {
		if !(len(parts) == 3 && (parts[2] == "value" || strings.HasPrefix(parts[2], "value.") || strings.HasPrefix(parts[2], "value["))) {
			data = inner
		}
	}
	value := data
	if len(parts) == 3 {
		v, found := getFromDict(data, parts[2])
		if !found {
			return nil, &ResolveError{Placeholder: p.FullMatch, Kind: BlockDocument,
				Reason: "could not resolve the keypath in the block document data"}
		}
		value = v
	}
	return deepCopy(value), nil
}

// variables is resolve_variables: a string that is one variable placeholder
// becomes the variable's value (or "" when there is no such variable);
// variable placeholders inside longer strings become str(value) or "".
func (s *resolution) variables(ctx context.Context, tree any) (any, error) {
	switch t := tree.(type) {
	case map[string]any, []any:
		return rebuild(t, func(v any) (any, error) { return s.variables(ctx, v) })
	case string:
		phs := s.f.find(t)
		if !hasKind(phs, Variable) {
			return t, nil
		}
		if p, ok := whole(t, phs); ok {
			v, err := s.variable(ctx, p)
			if err != nil {
				return nil, err
			}
			if !v.found {
				return "", nil
			}
			return deepCopy(v.value), nil
		}
		var firstErr error
		out := s.f.replace(t, func(p placeholder) (string, bool) {
			if p.Kind != Variable || firstErr != nil {
				return "", false
			}
			v, err := s.variable(ctx, p)
			if err != nil {
				firstErr = err
				return "", false
			}
			if !v.found {
				return "", true
			}
			return pyStr(v.value), true
		})
		if firstErr != nil {
			return nil, firstErr
		}
		return out, nil
	default:
		return t, nil
	}
}

func (s *resolution) variable(ctx context.Context, p placeholder) (variableValue, error) {
	// Prefect removes every occurrence of the prefix, not only the leading one.
	name := strings.ReplaceAll(p.Name, variablePrefix, "")
	if v, ok := s.vars[name]; ok {
		return v, nil
	}
	value, found, err := s.r.Variable(ctx, name)
	if err != nil {
		return variableValue{}, &ResolveError{Placeholder: p.FullMatch, Kind: Variable, Err: err}
	}
	v := variableValue{value: value, found: found}
	s.vars[name] = v
	return v, nil
}

// noResolver stands in for a nil Resolver: templates without block or
// variable placeholders render without one.
type noResolver struct{}

var errNoResolver = errors.New("no Resolver was given to Render")

func (noResolver) Variable(context.Context, string) (any, bool, error) {
	return nil, false, errNoResolver
}

func (noResolver) BlockDocumentByID(context.Context, string) (map[string]any, error) {
	return nil, errNoResolver
}

func (noResolver) BlockDocumentByName(context.Context, string, string) (map[string]any, error) {
	return nil, errNoResolver
}
