package binary

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// run feeds chunks to dec the way a connection does (unconsumed bytes are
// kept and the next chunk appended) and describes each decoded request or
// error. It checks the decoder's invariants on the way: n within the
// buffer, need beyond what is buffered, progress or a need on every call.
// It stops at the first error that closes the connection.
func run(t testing.TB, dec *Decoder, chunks [][]byte) []string {
	t.Helper()
	var out []string
	var pending []byte
	var req Request
	for _, c := range chunks {
		pending = append(pending, c...)
		for len(pending) > 0 {
			n, need, err := dec.Decode(pending, &req)
			if n < 0 || n > len(pending) {
				t.Fatalf("Decode consumed %d of %d bytes", n, len(pending))
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Decode returned %T %v, want *Error", err, err)
				}
				out = append(out, fmt.Sprintf("err %s op=%s opaque=%d key=%q", e.desc, req.Opcode, req.Opaque, req.Key))
				if e.Close {
					return append(out, "close")
				}
				pending = pending[n:]
				continue
			}
			if n == 0 {
				if need != 0 && need <= len(pending) {
					t.Fatalf("Decode needs %d bytes but has %d and made no progress", need, len(pending))
				}
				break
			}
			if !req.Empty() {
				out = append(out, describe(&req))
			}
			pending = pending[n:]
		}
	}
	if dec.Skipping() > 0 {
		out = append(out, fmt.Sprintf("skipping %d", dec.Skipping()))
	}
	return out
}

func describe(r *Request) string {
	s := fmt.Sprintf("%s opaque=%d cas=%d key=%q", r.Opcode, r.Opaque, r.CAS, r.Key)
	if len(r.Extras) > 0 {
		s += fmt.Sprintf(" flags=%d exptime=%d delta=%d initial=%d", r.Flags, r.Exptime, r.Delta, r.Initial)
	}
	if r.Value != nil {
		s += fmt.Sprintf(" value=%q", r.Value)
	}
	return s
}

// frame builds a request frame.
func frame(op Opcode, opaque uint32, cas uint64, extras, key, value string) []byte {
	return AppendRequest(nil, op, opaque, cas, []byte(extras), []byte(key), []byte(value))
}

// rawFrame builds a header with the given lengths followed by body.
func rawFrame(magic byte, op Opcode, keyLen uint16, extLen uint8, bodyLen uint32, body string) []byte {
	h := Header{Magic: magic, Opcode: op, KeyLen: keyLen, ExtLen: extLen, BodyLen: bodyLen, Opaque: 7}
	return append(h.Append(nil), body...)
}

func setExtras(flags, exptime uint32) string {
	b := binary.BigEndian.AppendUint32(nil, flags)
	return string(binary.BigEndian.AppendUint32(b, exptime))
}

func u32(v uint32) string { return string(binary.BigEndian.AppendUint32(nil, v)) }

func arithExtras(delta, initial uint64, exptime uint32) string {
	b := binary.BigEndian.AppendUint64(nil, delta)
	b = binary.BigEndian.AppendUint64(b, initial)
	return string(binary.BigEndian.AppendUint32(b, exptime))
}

func cat(frames ...[]byte) []byte { return slices.Concat(frames...) }
