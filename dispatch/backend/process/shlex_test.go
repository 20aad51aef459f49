package process

import (
	"slices"
	"testing"
)

// The expectations were produced by Python 3.11's shlex.split, which Prefect's
// process worker uses on the command.
func TestSplitCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "prefect flow-run execute", want: []string{"prefect", "flow-run", "execute"}},
		{in: "a  b\tc", want: []string{"a", "b", "c"}},
		{in: `"a b" c`, want: []string{"a b", "c"}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `'x y'z`, want: []string{"x yz"}},
		{in: `"a\"b" c`, want: []string{`a"b`, "c"}},
		{in: `"\$x"`, want: []string{`\$x`}},
		{in: "", want: nil},
		{in: `python -c "print(1)"`, want: []string{"python", "-c", "print(1)"}},
		{in: `""`, want: []string{""}},
		{in: "it's", wantErr: true},
		{in: `trailing\`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitCommand(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !slices.Equal(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
