package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Load fills dst, a pointer to a configuration struct, from four layers,
// each overriding the one before:
//
//  1. the values dst already holds (the defaults);
//  2. the YAML file configFile, if it is not empty; a key the struct does
//     not have is an error that names it, and so is a duration written as a
//     bare number;
//  3. the environment variables EnvName(envPrefix, key) of the struct's keys,
//     if envPrefix is not empty; variables under the prefix that name no key
//     (TRUNKPASS_MASTER_KEY and other secrets read with [Secret]) are left
//     alone;
//  4. the flags of fs, if fs is not nil, that were set on the command line
//     and are named like a key (see [Bind]); other flags, such as --config,
//     are ignored.
//
// Only the fields that are configuration keys are written; fields tagged
// `koanf:"-"` keep their values. On error dst is left unchanged.
func Load(dst any, configFile string, fs *pflag.FlagSet, envPrefix string) error {
	return load(dst, configFile, fs, envPrefix, os.Environ)
}

func load(dst any, configFile string, fs *pflag.FlagSet, envPrefix string, environ func() []string) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a non-nil pointer to a struct, got %T", dst)
	}
	s := newSchema(rv.Elem().Type())
	ko := koanf.New(".")

	// 1. Defaults.
	for _, l := range s.leaves {
		if err := ko.Set(l.key, defaultValue(rv.Elem().FieldByIndex(l.index), l)); err != nil {
			return fmt.Errorf("config: default for %s: %w", l.key, err)
		}
	}

	// 2. The file.
	if configFile != "" {
		fk, err := loadFile(s, configFile)
		if err != nil {
			return err
		}
		if err := ko.Merge(fk); err != nil {
			return fmt.Errorf("config: %s: %w", configFile, err)
		}
	}

	// 3. The environment.
	if envPrefix != "" {
		if err := loadEnv(ko, s, envPrefix, environ); err != nil {
			return err
		}
	}

	// 4. Flags set on the command line.
	if fs != nil {
		p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			l := s.byKey[f.Name]
			if l == nil || l.secret || l.kind == kindOther {
				return "", nil
			}
			return l.key, posflag.FlagVal(fs, f)
		})
		if err := ko.Load(p, nil); err != nil {
			return fmt.Errorf("config: flags: %w", err)
		}
	}

	// Decode into a zero value, so that lists and maps from a later layer
	// replace those of an earlier one instead of merging into them, then
	// copy the keys into dst.
	fresh := reflect.New(s.typ)
	if err := ko.UnmarshalWithConf("", fresh.Interface(), koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for _, l := range s.leaves {
		rv.Elem().FieldByIndex(l.index).Set(fresh.Elem().FieldByIndex(l.index))
	}
	return nil
}

// defaultValue returns the value a field holds as a koanf value.
func defaultValue(v reflect.Value, l *leaf) any {
	if l.kind == kindText {
		return textDefault(v)
	}
	return v.Interface()
}

// loadFile reads and checks the YAML file.
func loadFile(s *schema, path string) (*koanf.Koanf, error) {
	fk := koanf.New(".")
	if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	raw := fk.Raw()
	var problems []string
	for _, k := range s.unknownKeys(raw) {
		problems = append(problems, fmt.Sprintf("unknown key %q", k))
	}
	for _, l := range s.leaves {
		if l.kind != kindDuration {
			continue
		}
		if v, ok := lookup(raw, l.key); ok && isNonZeroNumber(v) {
			problems = append(problems, fmt.Sprintf("%s: a duration needs a unit, such as \"%vs\" or \"%vm\"", l.key, v, v))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("config: %s: %s", path, strings.Join(problems, "; "))
	}
	// A section written with nothing under it ("edge:") means an empty
	// section, not "no values": keep the defaults of its keys.
	for _, p := range nullSections(s.root, raw, "") {
		fk.Delete(p)
	}
	return fk, nil
}

// lookup finds the value at a dotted key in a nested map.
func lookup(m map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		v, ok := m[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

func isNonZeroNumber(v any) bool {
	switch n := v.(type) {
	case int:
		return n != 0
	case int64:
		return n != 0
	case uint64:
		return n != 0
	case float64:
		return n != 0
	}
	return false
}

// nullSections returns the dotted paths of the sections that are null in m.
func nullSections(n *node, m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		child, ok := n.children[k]
		if !ok || child.leaf != nil {
			continue
		}
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		switch v := v.(type) {
		case nil:
			out = append(out, path)
		case map[string]any:
			out = append(out, nullSections(child, v, path)...)
		}
	}
	return out
}

// loadEnv merges the environment variables that name keys of s.
func loadEnv(ko *koanf.Koanf, s *schema, prefix string, environ func() []string) error {
	names, err := s.envNames(prefix)
	if err != nil {
		return err
	}
	var errs []error
	p := env.Provider(".", env.Opt{
		Prefix:      strings.TrimSuffix(prefix, "_") + "_",
		EnvironFunc: environ,
		TransformFunc: func(name, value string) (string, any) {
			l := names[name]
			if l == nil {
				return "", nil
			}
			v, err := parseEnv(l, value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				return "", nil
			}
			return l.key, v
		},
	})
	if err := ko.Load(p, nil); err != nil {
		return fmt.Errorf("config: environment: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: environment: %w", errors.Join(errs...))
	}
	return nil
}

// parseEnv converts the text of an environment variable to the value of
// leaf l.
func parseEnv(l *leaf, s string) (any, error) {
	switch l.kind {
	case kindString, kindText:
		return s, nil
	case kindBool:
		return strconv.ParseBool(strings.TrimSpace(s))
	case kindInt:
		return strconv.ParseInt(strings.TrimSpace(s), 10, l.typ.Bits())
	case kindUint:
		return strconv.ParseUint(strings.TrimSpace(s), 10, l.typ.Bits())
	case kindFloat:
		return strconv.ParseFloat(strings.TrimSpace(s), l.typ.Bits())
	case kindDuration:
		return time.ParseDuration(strings.TrimSpace(s))
	case kindStrings:
		return splitList(s), nil
	case kindStringMap:
		m := map[string]string{}
		for _, item := range splitList(s) {
			k, v, ok := strings.Cut(item, "=")
			if !ok {
				return nil, fmt.Errorf("want key=value pairs separated by commas, got an item without '='")
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		return m, nil
	}
	return nil, fmt.Errorf("key %s can only be set in the configuration file", l.key)
}

// splitList splits a comma-separated list, dropping blanks around items and
// empty items; an empty string is an empty list.
func splitList(s string) []string {
	out := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
