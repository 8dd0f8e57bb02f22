package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// kind is how a leaf value is read from flags and the environment.
type kind int

const (
	kindOther     kind = iota // file only: no flag, no environment variable
	kindString                // string and named string types
	kindBool                  // bool
	kindInt                   // signed integers
	kindUint                  // unsigned integers
	kindFloat                 // float32, float64
	kindDuration              // time.Duration
	kindStrings               // []string
	kindStringMap             // map[string]string
	kindText                  // types implementing encoding.TextUnmarshaler
)

var (
	durationType      = reflect.TypeFor[time.Duration]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// leaf is one configuration key that holds a value.
type leaf struct {
	key    string // dotted koanf path
	index  []int  // field index path from the root struct
	typ    reflect.Type
	kind   kind
	desc   string
	secret bool
}

// node is a position in the key tree: either a struct with children or a
// leaf.
type node struct {
	children map[string]*node
	leaf     *leaf
}

// schema describes the keys of a configuration struct type.
type schema struct {
	typ    reflect.Type
	leaves []*leaf
	byKey  map[string]*leaf
	root   *node
}

// structType returns the struct type behind v (a struct or a pointer to
// one).
func structType(v any) (reflect.Type, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: want a struct or a pointer to a struct, got %T", v)
	}
	return t, nil
}

// newSchema walks the struct type t.
func newSchema(t reflect.Type) *schema {
	s := &schema{typ: t, byKey: map[string]*leaf{}}
	s.root = s.walk(t, "", nil)
	return s
}

func (s *schema) walk(t reflect.Type, prefix string, index []int) *node {
	n := &node{children: map[string]*node{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		idx := append(append([]int(nil), index...), i)
		if isNested(f.Type) {
			n.children[name] = s.walk(f.Type, key, idx)
			continue
		}
		l := &leaf{
			key:    key,
			index:  idx,
			typ:    f.Type,
			kind:   kindOf(f.Type),
			desc:   f.Tag.Get("desc"),
			secret: f.Tag.Get("secret") == "true",
		}
		s.leaves = append(s.leaves, l)
		s.byKey[key] = l
		n.children[name] = &node{leaf: l}
	}
	return n
}

// isNested reports whether a field of type t is a nested section rather
// than a value.
func isNested(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !isText(t)
}

func isText(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshalType)
}

func kindOf(t reflect.Type) kind {
	switch {
	case t == durationType:
		return kindDuration
	case isText(t):
		return kindText
	}
	switch t.Kind() {
	case reflect.String:
		return kindString
	case reflect.Bool:
		return kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindUint
	case reflect.Float32, reflect.Float64:
		return kindFloat
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return kindStrings
		}
	case reflect.Map:
		if t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String {
			return kindStringMap
		}
	}
	return kindOther
}

// EnvName returns the environment variable that sets key under prefix:
// EnvName("TRUNKPASS", "rate_limit.per_customer") is
// "TRUNKPASS_RATE_LIMIT_PER_CUSTOMER".
func EnvName(prefix, key string) string {
	name := strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
	if prefix == "" {
		return name
	}
	return strings.TrimSuffix(prefix, "_") + "_" + name
}

// envNames maps the environment variable of every leaf to the leaf (for a
// file-only leaf, so that setting it is reported rather than ignored). Two keys that share a variable name
// (a_b.c and a.b_c) are a mistake in the struct and an error.
func (s *schema) envNames(prefix string) (map[string]*leaf, error) {
	out := make(map[string]*leaf, len(s.leaves))
	for _, l := range s.leaves {
		name := EnvName(prefix, l.key)
		if other, dup := out[name]; dup {
			return nil, fmt.Errorf("config: keys %q and %q both map to environment variable %s", other.key, l.key, name)
		}
		out[name] = l
	}
	return out, nil
}

// unknownKeys checks a map read from a configuration file against the key
// tree and returns the dotted paths of the keys that do not exist, sorted.
func (s *schema) unknownKeys(m map[string]any) []string {
	var out []string
	var check func(n *node, m map[string]any, prefix string)
	check = func(n *node, m map[string]any, prefix string) {
		for k, v := range m {
			path := k
			if prefix != "" {
				path = prefix + "." + k
			}
			child, ok := n.children[k]
			if !ok {
				out = append(out, path)
				continue
			}
			if child.leaf == nil {
				if sub, ok := v.(map[string]any); ok {
					check(child, sub, path)
				}
			}
		}
	}
	check(s.root, m, "")
	sort.Strings(out)
	return out
}
