package config

import (
	"encoding"
	"fmt"
	"reflect"
	"time"

	"github.com/spf13/pflag"
)

// Bind registers on fs one flag per key of the configuration struct
// defaults (a struct or a pointer to one), named by the key's dotted path
// (--listen, --edge.audience, --rate_limit.per_customer), with the field's
// current value as the flag's default and its `desc` tag as the usage text.
//
// Fields tagged `secret:"true"` get no flag: secrets never go on the command
// line. Fields of a type that has no flag form (slices of structs, maps
// other than map[string]string, pointers) are settable from the file only.
// Durations are duration flags, []string fields comma-separated string
// slice flags, map[string]string fields key=value lists.
//
// Bind panics if defaults is not a struct or if a flag of the same name is
// already defined, as pflag does for any redefined flag: both are
// programming errors.
func Bind(fs *pflag.FlagSet, defaults any) {
	t, err := structType(defaults)
	if err != nil {
		panic(err)
	}
	v := reflect.Indirect(reflect.ValueOf(defaults))
	if !v.IsValid() {
		v = reflect.New(t).Elem()
	}
	for _, l := range newSchema(t).leaves {
		if l.secret || l.kind == kindOther {
			continue
		}
		bindLeaf(fs, l, v.FieldByIndex(l.index))
	}
}

func bindLeaf(fs *pflag.FlagSet, l *leaf, v reflect.Value) {
	name, usage := l.key, l.desc
	switch l.kind {
	case kindString:
		fs.String(name, v.String(), usage)
	case kindBool:
		fs.Bool(name, v.Bool(), usage)
	case kindInt:
		if v.Kind() == reflect.Int {
			fs.Int(name, int(v.Int()), usage)
		} else {
			fs.Int64(name, v.Int(), usage)
		}
	case kindUint:
		if v.Kind() == reflect.Uint {
			fs.Uint(name, uint(v.Uint()), usage)
		} else {
			fs.Uint64(name, v.Uint(), usage)
		}
	case kindFloat:
		fs.Float64(name, v.Float(), usage)
	case kindDuration:
		fs.Duration(name, time.Duration(v.Int()), usage)
	case kindStrings:
		s := make([]string, v.Len())
		for i := range s {
			s[i] = v.Index(i).String()
		}
		fs.StringSlice(name, s, usage)
	case kindStringMap:
		m := make(map[string]string, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().String()
		}
		fs.StringToString(name, m, usage)
	case kindText:
		fs.String(name, textDefault(v), usage)
	default:
		panic(fmt.Sprintf("config: no flag form for key %q", name))
	}
}

// textDefault renders a TextMarshaler value for a flag default.
func textDefault(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		if b, err := m.MarshalText(); err == nil {
			return string(b)
		}
	}
	if v.CanAddr() {
		if m, ok := v.Addr().Interface().(encoding.TextMarshaler); ok {
			if b, err := m.MarshalText(); err == nil {
				return string(b)
			}
		}
	}
	return ""
}
