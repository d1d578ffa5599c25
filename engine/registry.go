package engine

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Driver creates engines of one kind. Open is memcached's create_instance
// followed by initialize(config): it parses the engine's configuration
// string, acquires what the engine needs (memory, files) and returns a ready
// engine, or an error that says what is wrong with the configuration.
type Driver interface {
	Open(env Env, config string) (Engine, error)
}

// DriverFunc adapts a function to the Driver interface.
type DriverFunc func(env Env, config string) (Engine, error)

// Open calls f.
func (f DriverFunc) Open(env Env, config string) (Engine, error) { return f(env, config) }

// Constructor adapts an engine's constructor, which returns its concrete
// type, to a Driver: a failed construction then yields a nil Engine and
// never an interface holding a nil pointer.
func Constructor[E Engine](newEngine func(env Env, config string) (E, error)) Driver {
	return DriverFunc(func(env Env, config string) (Engine, error) {
		e, err := newEngine(env, config)
		if err != nil {
			return nil, err
		}
		return e, nil
	})
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes an engine available by name. Engines call it from init.
// It panics if name is empty, d is nil or name is already registered.
func Register(name string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if name == "" || d == nil {
		panic("engine: Register with empty name or nil driver")
	}
	if _, dup := drivers[name]; dup {
		panic("engine: Register called twice for " + name)
	}
	drivers[name] = d
}

// Names returns the names of the registered engines, sorted.
func Names() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	names := make([]string, 0, len(drivers))
	for n := range drivers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens the engine registered as name with the configuration string
// config. Zero fields of env take their defaults (Env.WithDefaults).
func Open(name string, env Env, config string) (Engine, error) {
	driversMu.RLock()
	d, ok := drivers[name]
	driversMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (known engines: %s)", ErrUnknownEngine, name, strings.Join(Names(), ", "))
	}
	e, err := d.Open(env.WithDefaults(), config)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", name, err)
	}
	return e, nil
}

// ParseConfig splits a configuration string of the form
// "key=value,key=value" into its pairs, in order. Empty input gives no
// pairs. A pair without "=" has the value "true" (a switch). Keys must be
// unique and non-empty. Spaces around keys and values are trimmed.
func ParseConfig(config string) ([][2]string, error) {
	var pairs [][2]string
	seen := map[string]bool{}
	if strings.TrimSpace(config) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(config, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if ok {
			v = strings.TrimSpace(v)
		} else {
			v = "true"
		}
		if k == "" {
			return nil, fmt.Errorf("%w: empty key in %q", ErrBadConfig, config)
		}
		if seen[k] {
			return nil, fmt.Errorf("%w: key %q given twice", ErrBadConfig, k)
		}
		seen[k] = true
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}
