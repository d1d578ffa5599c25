package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mnemo-cache/mnemo/internal/testserver"
)

// TestConcurrentClients runs 20 connections doing 300 random set, append,
// get, multi-get and delete each on 500 shared keys, and checks that every
// value read belongs to the key it was read under: each value starts with
// "<key>|" and is made of that key's bytes only. The work is a number of
// commands, not a time, so a slow machine runs all of it, only slower.
func TestConcurrentClients(t *testing.T) {
	const (
		conns   = 20
		keys    = 500
		perConn = 300
	)
	addr := startMnemo(t)
	var ops, hits atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, h, err := hammer(addr, uint64(i), keys, perConn)
			ops.Add(n)
			hits.Add(h)
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations, %d values checked", ops.Load(), hits.Load())
	if hits.Load() == 0 {
		t.Error("no value was ever read back")
	}
}

func keyName(i int) string { return "conc:" + strconv.Itoa(i) }

// valueFor builds a value that names its key: "<key>|" then the key
// repeated until the value has at least size bytes.
func valueFor(key string, size int) []byte {
	v := make([]byte, 0, size+len(key)+1)
	v = append(v, key...)
	v = append(v, '|')
	for len(v) < size {
		v = append(v, key...)
	}
	return v
}

// checkValue reports whether v is "<key>|" followed by whole copies of
// key: a value valueFor(key, ...) builds, with any number of appends of
// key.
func checkValue(key string, v []byte) error {
	prefix := key + "|"
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return fmt.Errorf("value under %q does not start with %q: %.60q", key, prefix, v)
	}
	rest := v[len(prefix):]
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte(key)) {
			return fmt.Errorf("value under %q holds foreign bytes: %.60q", key, rest)
		}
		rest = rest[len(key):]
	}
	return nil
}

// hammer runs n random commands on one connection and returns how many
// it ran and how many values it checked.
func hammer(addr string, seed uint64, keys, n int) (ops, checked int64, err error) {
	nc, err := net.DialTimeout("tcp", addr, patience)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	conn := testserver.Patient(nc)
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	expect := func(want string) error {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if line != want+"\r\n" {
			return fmt.Errorf("got %q, want %q", line, want)
		}
		return nil
	}
	// readValues reads VALUE blocks up to END and checks each one.
	readValues := func(asked []string) error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if line == "END\r\n" {
				return nil
			}
			f := strings.Fields(line)
			if (len(f) != 4 && len(f) != 5) || f[0] != "VALUE" {
				return fmt.Errorf("unexpected line %q", line)
			}
			key := f[1]
			found := false
			for _, k := range asked {
				found = found || k == key
			}
			if !found {
				return fmt.Errorf("got key %q, asked for %q", key, asked)
			}
			size, err := strconv.Atoi(f[3])
			if err != nil {
				return fmt.Errorf("bad length in %q", line)
			}
			data := make([]byte, size+2)
			if _, err := io.ReadFull(r, data); err != nil {
				return err
			}
			if !bytes.HasSuffix(data, []byte("\r\n")) {
				return fmt.Errorf("value of %q not followed by CRLF", key)
			}
			if err := checkValue(key, data[:size]); err != nil {
				return err
			}
			checked++
		}
	}
	for range n {
		ops++
		key := keyName(rng.IntN(keys))
		switch op := rng.IntN(10); {
		case op < 3: // set, small or large
			size := rng.IntN(64)
			if rng.IntN(10) == 0 {
				size = rng.IntN(100_000)
			}
			v := valueFor(key, size)
			fmt.Fprintf(w, "set %s 0 0 %d\r\n%s\r\n", key, len(v), v)
			w.Flush()
			if err := expect("STORED"); err != nil {
				return ops, checked, fmt.Errorf("set %s: %w", key, err)
			}
		case op < 4: // append: NOT_STORED when the key is missing
			fmt.Fprintf(w, "append %s 0 0 %d\r\n%s\r\n", key, len(key), key)
			w.Flush()
			line, err := r.ReadString('\n')
			if err != nil {
				return ops, checked, err
			}
			if line != "STORED\r\n" && line != "NOT_STORED\r\n" {
				return ops, checked, fmt.Errorf("append %s: %q", key, line)
			}
		case op < 7: // get
			fmt.Fprintf(w, "get %s\r\n", key)
			w.Flush()
			if err := readValues([]string{key}); err != nil {
				return ops, checked, fmt.Errorf("get %s: %w", key, err)
			}
		case op < 9: // multi-get of up to 10 keys
			asked := make([]string, 1+rng.IntN(10))
			for j := range asked {
				asked[j] = keyName(rng.IntN(keys))
			}
			fmt.Fprintf(w, "gets %s\r\n", strings.Join(asked, " "))
			w.Flush()
			if err := readValues(asked); err != nil {
				return ops, checked, fmt.Errorf("gets %q: %w", asked, err)
			}
		default: // delete
			fmt.Fprintf(w, "delete %s\r\n", key)
			w.Flush()
			line, err := r.ReadString('\n')
			if err != nil {
				return ops, checked, err
			}
			if line != "DELETED\r\n" && line != "NOT_FOUND\r\n" {
				return ops, checked, fmt.Errorf("delete %s: %q", key, line)
			}
		}
	}
	return ops, checked, nil
}

func TestCheckValue(t *testing.T) {
	tests := []struct {
		key  string
		v    string
		good bool
	}{
		{"k1", "k1|", true},
		{"k1", "k1|k1k1k", false},
		{"k1", "k1|k1k1", true},
		{"k1", "k2|", false},
		{"k1", "k1|k2", false},
		{"k1", "k1", false},
		{"conc:1", "conc:1|conc:1conc:1", true},
		{"conc:1", "conc:1|conc:12", false},
	}
	for _, tt := range tests {
		err := checkValue(tt.key, []byte(tt.v))
		if (err == nil) != tt.good {
			t.Errorf("checkValue(%q, %q) = %v, want good=%v", tt.key, tt.v, err, tt.good)
		}
	}
	if err := checkValue("abc", valueFor("abc", 100)); err != nil {
		t.Errorf("valueFor: %v", err)
	}
}
