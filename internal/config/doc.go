// Package config loads the configuration of the trunkpass subcommands
// (issuer, edge, demo) from defaults, a YAML file, the environment and
// command-line flags.
//
// A command describes its configuration as a Go struct whose fields carry
// `koanf:"name"` tags; nested structs form dotted keys (edge.audience).
// An optional `desc:"…"` tag gives the flag's usage text, and
// `secret:"true"` marks a field that holds a secret value: such a field never
// gets a flag (flags show in ps), and is set from the environment or the file
// only.
//
// Values are layered, later layers overriding earlier ones:
//
//  1. the defaults: the value of the struct handed to [Load];
//  2. the YAML file given with --config (unknown keys are an error);
//  3. environment variables: the key upper-cased with dots and underscores
//     turned into underscores, after a prefix (TRUNKPASS_EDGE_AUDIENCE for
//     edge.audience, TRUNKPASS_RATE_LIMIT_PER_CUSTOMER for
//     rate_limit.per_customer);
//  4. flags registered by [Bind] that were set on the command line.
//
// Durations are written with a unit ("10m", "1h30s"); string lists are YAML
// sequences, comma-separated in the environment and in flags; string maps
// are YAML mappings, "k=v,k2=v2" in the environment and in flags.
//
// Secret values such as the admin token or the master key come from an
// environment variable or a file named in the configuration; see [Secret]
// and [MasterKey].
package config
