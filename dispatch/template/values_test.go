package template

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func TestPyStr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"string as is", "it's", "it's"},
		{"none", nil, "None"},
		{"true", true, "True"},
		{"false", false, "False"},
		{"int", json.Number("42"), "42"},
		{"negative zero int", json.Number("-0"), "0"},
		{"big int", json.Number("123456789012345678901234567890"), "123456789012345678901234567890"},
		{"float literal", json.Number("5.0"), "5.0"},
		{"exponent literal is a float", json.Number("1E5"), "100000.0"},
		{"float64", 0.1, "0.1"},
		{"go int", 7, "7"},
		{"list", []any{json.Number("1"), "a", nil, true, json.Number("2.5")}, "[1, 'a', None, True, 2.5]"},
		{"dict sorted", map[string]any{"b": json.Number("1"), "a": []any{}}, "{'a': [], 'b': 1}"},
		{"nested quotes", []any{"it's", `say "hi"`, `both ' and "`}, `["it's", 'say "hi"', 'both \' and "']`},
		{"escapes", []any{"a\tb\nc\rd\\e\x07\x7f"}, `['a\tb\nc\rd\\e\x07\x7f']`},
		{"non-printable unicode", []any{"\u00a0\u00ad\u200b\u2028\U000e0001"}, `['\xa0\xad\u200b\u2028\U000e0001']`},
		{"printable unicode kept", []any{"café ☕ 日本 😀"}, "['café ☕ 日本 😀']"},
		{"empty containers", map[string]any{"l": []any{}, "d": map[string]any{}}, "{'d': {}, 'l': []}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := pyStr(tt.in); got != tt.want {
				t.Errorf("pyStr(%#v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPyFloat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{0.1, "0.1"},
		{-3.14, "-3.14"},
		{1e15, "1000000000000000.0"},
		{1e16, "1e+16"},
		{1.5e16, "1.5e+16"},
		{123456789.123456789, "123456789.12345679"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{2.5e-7, "2.5e-07"},
		{1.5e300, "1.5e+300"},
		{5e-324, "5e-324"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
	}
	for _, tt := range tests {
		if got := pyFloat(tt.in); got != tt.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPyInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"0", 0, true},
		{"12", 12, true},
		{"-1", -1, true},
		{"+3", 3, true},
		{"007", 7, true},
		{"1_000", 1000, true},
		{"\u0663", 3, true},     // ARABIC-INDIC DIGIT THREE
		{"\U0001d7d9", 1, true}, // MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
		{"", 0, false},
		{"-", 0, false},
		{"_1", 0, false},
		{"1_", 0, false},
		{"1__0", 0, false},
		{"1.0", 0, false},
		{"x", 0, false},
		{"99999999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := pyInt(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("pyInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestTruthy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want bool
	}{
		{nil, false}, {false, false}, {true, true}, {"", false}, {"x", true},
		{json.Number("0"), false}, {json.Number("-0"), false}, {json.Number("0.0"), false}, {json.Number("0e9"), false},
		{json.Number("10"), true}, {json.Number("0.5"), true}, {0.0, false}, {2.0, true},
		{map[string]any{}, false}, {map[string]any{"a": nil}, true}, {[]any{}, false}, {[]any{nil}, true},
	}
	for _, tt := range tests {
		if got := truthy(tt.in); got != tt.want {
			t.Errorf("truthy(%#v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestGetFromDict(t *testing.T) {
	t.Parallel()
	root := map[string]any{
		"obj":  map[string]any{"key": map[string]any{"nested": "deep"}, "2026": "year", "": "empty"},
		"list": []any{"a", "b", map[string]any{"c": "d"}},
		"word": "héllo",
		"num":  json.Number("5"),
		"null": nil,
	}
	tests := []struct {
		path   string
		want   any
		wantOK bool
	}{
		{"obj.key.nested", "deep", true},
		{"obj.2026", "year", true},
		{"obj..key", nil, false},
		{"obj.", "empty", true},
		{"list[1]", "b", true},
		{"list.1", "b", true},
		{"list.-1", map[string]any{"c": "d"}, true},
		{"list[-3]", "a", true},
		{"list[-4]", nil, false},
		{"list[3]", nil, false},
		{"list[2].c", "d", true},
		{"list.x", nil, false},
		{"word.1", "é", true},
		{"word[-1]", "o", true},
		{"num.0", nil, false},
		{"null", nil, true},
		{"null.x", nil, false},
		{"missing", nil, false},
	}
	for _, tt := range tests {
		got, ok := getFromDict(root, tt.path)
		if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("getFromDict(%q) = %#v, %v; want %#v, %v", tt.path, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestSetInDict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		start   map[string]any
		path    string
		want    map[string]any
		wantErr bool
	}{
		{"new nested", map[string]any{}, "env.FOO", map[string]any{"env": map[string]any{"FOO": "v"}}, false},
		{"into existing", map[string]any{"env": map[string]any{"A": "1"}}, "env.FOO", map[string]any{"env": map[string]any{"A": "1", "FOO": "v"}}, false},
		{"brackets become keys", map[string]any{}, "args[0]", map[string]any{"args": map[string]any{"0": "v"}}, false},
		{"empty last segment", map[string]any{}, "env.", map[string]any{"env": map[string]any{"": "v"}}, false},
		{"through a scalar", map[string]any{"a": "x"}, "a.b", nil, true},
		{"through null", map[string]any{"a": nil}, "a.b", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := setInDict(tt.start, tt.path, "v")
			if (err != nil) != tt.wantErr {
				t.Fatalf("setInDict(%q) error = %v, wantErr %v", tt.path, err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(tt.start, tt.want) {
				t.Errorf("setInDict(%q) gave %#v, want %#v", tt.path, tt.start, tt.want)
			}
		})
	}
}

func TestDeepMerge(t *testing.T) {
	t.Parallel()
	dst := map[string]any{"a": map[string]any{"x": "1", "y": "1"}, "b": "keep", "c": map[string]any{"z": "1"}}
	merge := map[string]any{"a": map[string]any{"y": "2", "w": "2"}, "c": "scalar wins"}
	want := map[string]any{"a": map[string]any{"x": "1", "y": "2", "w": "2"}, "b": "keep", "c": "scalar wins"}
	if got := deepMerge(dst, merge); !reflect.DeepEqual(got, want) {
		t.Errorf("deepMerge = %#v, want %#v", got, want)
	}
	if dst["a"].(map[string]any)["y"] != "1" {
		t.Error("deepMerge modified its input")
	}
}
