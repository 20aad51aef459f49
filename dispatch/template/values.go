package template

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// This file holds the Python semantics the templating code leans on: str()
// and repr() of JSON values, truthiness, int() of a key, and the helpers of
// prefect.utilities.collections (get_from_dict, set_in_dict, deep_merge).

// pyStr returns Python's str(v) for a JSON value as Python's json module
// decodes it: strings as they are, None, True/False, ints, float reprs, and
// dicts and lists in repr form. Dict keys come out sorted: a Go map has no
// order, and Prefect's own order depends on the database that stored the
// job variables.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteString(pyReprString(v))
	case json.Number:
		b.WriteString(pyNumber(v))
	case float64:
		b.WriteString(pyFloat(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyReprString(k))
			b.WriteString(": ")
			writeRepr(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, x)
		}
		b.WriteByte(']')
	default:
		fmt.Fprintf(b, "<%T>", v)
	}
}

// isPyFloat reports whether Python's json module decodes n as a float.
func isPyFloat(n json.Number) bool {
	return strings.ContainsAny(string(n), ".eE")
}

// pyNumber returns str() of the number Python's json module makes of n.
func pyNumber(n json.Number) string {
	if isPyFloat(n) {
		f, _ := strconv.ParseFloat(string(n), 64) // out of range gives ±Inf, like Python
		return pyFloat(f)
	}
	i, ok := new(big.Int).SetString(string(n), 10)
	if !ok {
		return string(n)
	}
	return i.String()
}

// pyFloat returns repr(f): the shortest round-tripping digits, in fixed
// notation when the decimal exponent is in [-4, 16) and with ".0" for whole
// numbers, otherwise in scientific notation with at least two exponent digits.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expText, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // value = 0.digits × 10^decpt
	if decpt <= -4 || decpt > 16 {
		out := digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		e := decpt - 1
		esign := "+"
		if e < 0 {
			esign, e = "-", -e
		}
		return fmt.Sprintf("%s%se%s%02d", sign, out, esign, e)
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	default:
		return sign + digits[:decpt] + "." + digits[decpt:]
	}
}

// pyReprString returns repr(s): single quotes unless s holds a single quote
// and no double quote, backslash escapes for the quote, backslash, \t \n \r,
// \xhh for other control characters, and \x, \u or \U escapes for
// non-printable characters.
func pyReprString(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}

// truthy is Python's bool(v).
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case json.Number:
		if isPyFloat(v) {
			f, _ := strconv.ParseFloat(string(v), 64)
			return f != 0
		}
		return strings.Trim(string(v), "-+0") != ""
	case float64:
		return v != 0
	case int:
		return v != 0
	case int64:
		return v != 0
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	default:
		return true
	}
}

// pyInt parses key as Python's int(key) does for a list index: optional
// sign, Unicode decimal digits, single underscores between digits. ok is
// false when Python raises ValueError or the number is too large to index
// anything (Python then raises IndexError; both mean "not found").
func pyInt(key string) (n int, ok bool) {
	s := strings.TrimFunc(key, isPySpace)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	const limit = 1 << 40
	prevDigit := false
	tooBig := false
	for _, r := range s {
		if r == '_' {
			if !prevDigit {
				return 0, false
			}
			prevDigit = false
			continue
		}
		d, isDigit := decimalValue(r)
		if !isDigit {
			return 0, false
		}
		prevDigit = true
		if n > limit {
			tooBig = true
			continue
		}
		n = n*10 + d
	}
	if !prevDigit || tooBig {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// decimalValue returns the value of a Unicode decimal digit (category Nd).
// Nd characters come in runs of ten starting at a zero.
func decimalValue(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	if !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	start := r
	for start > 0 && unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return int(r-start) % 10, true
}

func isPySpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, ' ', 0x85, 0xa0,
		0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// splitKeyPath splits a dotted key path the way get_from_dict and
// set_in_dict do: "[" becomes ".", "]" disappears, then split on ".".
func splitKeyPath(path string) []string {
	path = strings.ReplaceAll(path, "[", ".")
	path = strings.ReplaceAll(path, "]", "")
	return strings.Split(path, ".")
}

// getFromDict is prefect.utilities.collections.get_from_dict with a NotSet
// default: it walks path through maps (exact key), lists (Python int index,
// negative from the end) and strings (one character, Python indexing by code
// point), and reports false where Python would fall back to the default.
func getFromDict(root any, path string) (any, bool) {
	v := root
	for _, key := range splitKeyPath(path) {
		switch c := v.(type) {
		case map[string]any:
			x, ok := c[key]
			if !ok {
				return nil, false
			}
			v = x
		case []any:
			i, ok := pyIndex(key, len(c))
			if !ok {
				return nil, false
			}
			v = c[i]
		case string:
			runes := []rune(c)
			i, ok := pyIndex(key, len(runes))
			if !ok {
				return nil, false
			}
			v = string(runes[i])
		default:
			return nil, false
		}
	}
	return v, true
}

func pyIndex(key string, n int) (int, bool) {
	i, ok := pyInt(key)
	if !ok {
		return 0, false
	}
	if i < 0 {
		i += n
	}
	if i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// setInDict is prefect.utilities.collections.set_in_dict: it creates maps
// along path and fails where the path runs through a value that is not a map.
func setInDict(dst map[string]any, path string, value any) error {
	keys := splitKeyPath(path)
	for _, k := range keys[:len(keys)-1] {
		existing, ok := dst[k]
		if !ok {
			m := map[string]any{}
			dst[k] = m
			dst = m
			continue
		}
		m, isMap := existing.(map[string]any)
		if !isMap {
			return fmt.Errorf("key path %q runs through a value that is not an object", path)
		}
		dst = m
	}
	dst[keys[len(keys)-1]] = value
	return nil
}

// deepMerge is prefect.utilities.collections.deep_merge: maps present on both
// sides merge recursively, anything else from merge wins.
func deepMerge(dst, merge map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(merge))
	maps.Copy(out, dst)
	for k, v := range merge {
		a, aok := out[k].(map[string]any)
		b, bok := v.(map[string]any)
		if aok && bok {
			out[k] = deepMerge(a, b)
		} else {
			out[k] = v
		}
	}
	return out
}

// union is Python's dict | dict: a shallow merge where b wins.
func union(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// deepCopy copies maps and lists so that no input tree is ever modified.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return deepCopy(m).(map[string]any)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// typeName names a JSON value's type the way an error message should: never
// the value itself, which may be a secret.
func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if isPyFloat(v) {
			return "number"
		}
		return "integer"
	case float64:
		return "number"
	case int, int64:
		return "integer"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}
