package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// json reports whether output is one JSON object per line.
func (a *app) json() bool { return a.output == "json" }

// printJSON writes v as one line of JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = a.out.Write(b)
	return err
}

// printf writes human output.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.out, format, args...)
}

// formatTime renders a timestamp in ms since the epoch as UTC RFC 3339
// with milliseconds.
func formatTime(ms uint64) string {
	return time.UnixMilli(int64(ms)).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// formatValue renders a record value for people: a JSON object or array
// pretty-printed, printable text as is, anything else as "N bytes (binary)".
func formatValue(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed) {
		var out bytes.Buffer
		if err := json.Indent(&out, trimmed, "", "  "); err == nil {
			return out.String()
		}
	}
	if isText(b, true) {
		return string(b)
	}
	return binary(b)
}

// formatShort renders a key or header value on one line: text as is,
// anything else (including multi-line text) as "N bytes (binary)".
func formatShort(b []byte) string {
	if isText(b, false) {
		return string(b)
	}
	return binary(b)
}

func binary(b []byte) string {
	return fmt.Sprintf("%d bytes (binary)", len(b))
}

// isText reports whether b is valid UTF-8 without control characters
// (newlines and tabs allowed when multiline).
func isText(b []byte, multiline bool) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if multiline && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// jsonBytes is how -o json shows key and value bytes: a string when they
// are valid UTF-8, else base64 in a field with a "_base64" suffix.
func jsonBytes(obj map[string]any, field string, b []byte) {
	if utf8.Valid(b) {
		obj[field] = string(b)
		return
	}
	obj[field+"_base64"] = base64.StdEncoding.EncodeToString(b)
}

// plural renders "1 record", "2 records", "2 batches".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "ch") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
