package cloudrun

import (
	"errors"
	"strings"
)

// shlexSplit splits s into words as Python's shlex.split does in POSIX mode,
// which is how Prefect's Cloud Run worker turns a command or args string
// into a list: whitespace separates words; single quotes keep their content
// literally; inside double quotes a backslash escapes only " and \; outside
// quotes a backslash escapes any character.
func shlexSplit(s string) ([]string, error) {
	words := []string{}
	var cur strings.Builder
	inWord := false
	var quote rune
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			if r == '"' {
				quote = 0
			} else if r == '\\' && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\') {
				i++
				cur.WriteRune(runes[i])
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\':
			if i+1 == len(runes) {
				return nil, errors.New("no escaped character")
			}
			i++
			cur.WriteRune(runes[i])
			inWord = true
		case strings.ContainsRune(" \t\r\n", r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("no closing quotation")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
