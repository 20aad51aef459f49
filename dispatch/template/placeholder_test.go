package template

import (
	"reflect"
	"testing"
)

func TestPlaceholderFinder_Find(t *testing.T) {
	t.Parallel()
	f := newPlaceholderFinder()
	tests := []struct {
		in   string
		want []placeholder
	}{
		{"no placeholder", nil},
		{"{{ image }}", []placeholder{{"{{ image }}", "image", Standard}}},
		{"{{image}}-{{  tag\t}}", []placeholder{{"{{image}}", "image", Standard}, {"{{  tag\t}}", "tag", Standard}}},
		{"{{ a }}{{ a }}{{a}}", []placeholder{{"{{ a }}", "a", Standard}, {"{{a}}", "a", Standard}}},
		{"{{\u3000tag\u3000}}", []placeholder{{"{{\u3000tag\u3000}}", "tag", Standard}}},
		{"{{\vtag\v}}", []placeholder{{"{{\vtag\v}}", "tag", Standard}}},
		{"{{ env.FOO }} {{ list[0] }} {{ a-b }}", []placeholder{
			{"{{ env.FOO }}", "env.FOO", Standard}, {"{{ list[0] }}", "list[0]", Standard}, {"{{ a-b }}", "a-b", Standard}}},
		{"{{ größe }} {{ 名前 }}", []placeholder{{"{{ größe }}", "größe", Standard}, {"{{ 名前 }}", "名前", Standard}}},
		{"{{ prefect.blocks.secret.pw }}", []placeholder{{"{{ prefect.blocks.secret.pw }}", "prefect.blocks.secret.pw", BlockDocument}}},
		{"{{ prefect.variables.tag }}", []placeholder{{"{{ prefect.variables.tag }}", "prefect.variables.tag", Variable}}},
		{"{{ $HOME }} {{ a$ }}", []placeholder{{"{{ $HOME }}", "$HOME", EnvVar}, {"{{ a$ }}", "a$", Standard}}},
		{"{{{ image }}}", []placeholder{{"{{ image }}", "image", Standard}}},
		{"{{ }} {{ a b }} {{ 'a' }} {{ a | b }} { a } {{ a }", nil},
		{"{{ prefect.block.x }}", []placeholder{{"{{ prefect.block.x }}", "prefect.block.x", Standard}}},
	}
	for _, tt := range tests {
		if got := f.find(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("find(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestPlaceholderFinder_Replace(t *testing.T) {
	t.Parallel()
	f := newPlaceholderFinder()
	got := f.replace("{{ a }}/{{ b }}/{{ a }}", func(p placeholder) (string, bool) {
		if p.Name == "b" {
			return "", false
		}
		return "{{ b }}", true // inserted text is not scanned again
	})
	if want := "{{ b }}/{{ b }}/{{ b }}"; got != want {
		t.Errorf("replace = %q, want %q", got, want)
	}
}

func TestKind_String(t *testing.T) {
	t.Parallel()
	for k, want := range map[Kind]string{Standard: "standard", BlockDocument: "block_document", Variable: "variable", EnvVar: "env_var"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
