package ecs

import (
	"errors"
	"strings"
)

// splitCommand splits a command line as Python's shlex.split does in POSIX
// mode, which is how Prefect's ECS worker (command_from_string) turns the command into the container override's list:
// whitespace separates words; single quotes keep everything literally; double
// quotes keep everything, except that a backslash escapes " and \ (before
// any other character it stays, backslash and all); outside quotes a
// backslash escapes the next character.
func splitCommand(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		runes   = []rune(s)
		i       int
		quoting rune
	)
	for i < len(runes) {
		r := runes[i]
		switch {
		case quoting == '\'':
			if r == '\'' {
				quoting = 0
			} else {
				cur.WriteRune(r)
			}
		case quoting == '"':
			switch {
			case r == '"':
				quoting = 0
			case r == '\\' && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\'):
				i++
				cur.WriteRune(runes[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quoting, inWord = r, true
		case r == '\\':
			if i+1 >= len(runes) {
				return nil, errors.New("no escaped character after the final backslash")
			}
			i++
			cur.WriteRune(runes[i])
			inWord = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
		i++
	}
	if quoting != 0 {
		return nil, errors.New("no closing quotation")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
