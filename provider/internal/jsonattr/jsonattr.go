// Package jsonattr compares, converts and plans the JSON-valued attributes of
// the Terraform provider, so that values the Prefect server returns in another
// spelling never show as a diff or as an inconsistent result after apply.
//
// Two JSON documents are semantically equal when they decode to the same
// value: whitespace, object key order and string escapes do not matter, and
// numbers compare by exact value (1, 1.0, 1e0 and 10E-1 are equal; the server
// re-encodes 1e3 as 1000 and 2.50 as 2.5). Nulls, array order and every key
// still matter, so a key added or changed outside Terraform shows as drift.
package jsonattr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// Decode parses one JSON document, keeping numbers as json.Number so that no
// precision is lost. Trailing data after the document is an error.
func Decode(doc string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: unexpected data after the first value")
	}
	return v, nil
}

// DecodeObject parses a JSON document that must be an object.
func DecodeObject(doc string) (map[string]any, error) {
	v, err := Decode(doc)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, got %s", kind(v))
	}
	return obj, nil
}

// Encode returns the canonical compact form of a decoded value: object keys
// sorted, no insignificant whitespace, numbers as given. Equal values encode
// to equal strings only if their numbers are spelled alike; use Equal to
// compare.
func Encode(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("encode JSON: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// Equal reports whether two JSON documents are semantically equal (see the
// package comment). A document that does not parse is equal to nothing.
func Equal(a, b string) bool {
	va, err := Decode(a)
	if err != nil {
		return false
	}
	vb, err := Decode(b)
	if err != nil {
		return false
	}
	return EqualValues(va, vb)
}

// EqualValues reports whether two decoded JSON values are semantically equal.
// Numbers may be json.Number, float64 or any Go integer type.
func EqualValues(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !EqualValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !EqualValues(xv, yv) {
				return false
			}
		}
		return true
	}
	ra, okA := rat(a)
	rb, okB := rat(b)
	return okA && okB && ra.Cmp(rb) == 0
}

// rat returns a number's exact value.
func rat(v any) (*big.Rat, bool) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(n) == nil {
			return nil, false
		}
		return r, true
	case int:
		return new(big.Rat).SetInt64(int64(n)), true
	case int64:
		return new(big.Rat).SetInt64(n), true
	default:
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a number"
}
