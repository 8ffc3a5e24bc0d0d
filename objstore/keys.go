package objstore

import (
	"fmt"
	"strings"
)

// Key limits shared by every implementation, so that a key accepted by one
// backend is accepted by all of them.
const (
	// MaxKeyLen is the longest key in bytes (S3's limit).
	MaxKeyLen = 1024
	// MaxKeyElemLen is the longest slash-separated key element in bytes
	// (the usual file-name limit of local file systems).
	MaxKeyElemLen = 255
	// tmpPrefix starts the names of Local's temporary files. Key elements
	// may not start with it, so a temporary file is never taken for an
	// object and an object never for a temporary file.
	tmpPrefix = ".tmp-"
)

// CheckKey reports whether key is a valid object key. A valid key is a
// non-empty slash-separated relative path of at most MaxKeyLen bytes whose
// elements are non-empty, at most MaxKeyElemLen bytes, not "." or "..",
// and do not start with ".tmp-" (reserved for temporary files); it contains
// no backslash and no NUL byte. The error wraps ErrPermanent.
func CheckKey(key string) error {
	if key == "" {
		return badKey(key, "empty key")
	}
	if len(key) > MaxKeyLen {
		return badKey(key, fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	}
	if strings.HasPrefix(key, "/") {
		return badKey(key, "leading slash")
	}
	if strings.ContainsAny(key, "\\\x00") {
		return badKey(key, "backslash or NUL byte")
	}
	for elem := range strings.SplitSeq(key, "/") {
		if err := checkElem(key, elem); err != nil {
			return err
		}
	}
	return nil
}

// checkPrefix validates a List prefix: it must be empty or a string that a
// valid key could start with. Every element before the last slash must be a
// valid key element; the part after it may be any partial element.
func checkPrefix(prefix string) error {
	if strings.HasPrefix(prefix, "/") {
		return badKey(prefix, "prefix has a leading slash")
	}
	if strings.ContainsAny(prefix, "\\\x00") {
		return badKey(prefix, "prefix has a backslash or NUL byte")
	}
	if len(prefix) > MaxKeyLen {
		return badKey(prefix, fmt.Sprintf("prefix longer than %d bytes", MaxKeyLen))
	}
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return nil
	}
	for elem := range strings.SplitSeq(prefix[:i], "/") {
		if err := checkElem(prefix, elem); err != nil {
			return err
		}
	}
	return nil
}

func checkElem(key, elem string) error {
	switch {
	case elem == "":
		return badKey(key, "empty path element")
	case elem == "." || elem == "..":
		return badKey(key, fmt.Sprintf("%q path element", elem))
	case len(elem) > MaxKeyElemLen:
		return badKey(key, fmt.Sprintf("path element longer than %d bytes", MaxKeyElemLen))
	case strings.HasPrefix(elem, tmpPrefix):
		return badKey(key, fmt.Sprintf("path element starts with reserved %q", tmpPrefix))
	}
	return nil
}

func badKey(key, why string) error {
	return fmt.Errorf("objstore: invalid key %q: %s: %w", key, why, ErrPermanent)
}

// checkRange validates GetRange arguments common to every implementation.
func checkRange(key string, off, length int64) error {
	if off < 0 || length < 0 {
		return fmt.Errorf("objstore: get range %q: negative offset %d or length %d: %w",
			key, off, length, ErrPermanent)
	}
	return nil
}

// rangeOf returns the part of an object of size bytes that GetRange(off,
// length) returns, as [start, end). off beyond size is an error wrapping
// ErrPermanent; off == size gives an empty range.
func rangeOf(key string, size, off, length int64) (start, end int64, err error) {
	if off > size {
		return 0, 0, fmt.Errorf("objstore: get range %q: offset %d beyond end of object (size %d): %w",
			key, off, size, ErrPermanent)
	}
	end = size
	if length < size-off {
		end = off + length
	}
	return off, end, nil
}
