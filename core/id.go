package core

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
)

// ExecutionID identifies one admitted call. It is unique within the process (and across
// processes with overwhelming probability) and costs no system call or allocation: each
// bulkhead draws a random 64-bit prefix once, and calls number themselves after it.
// String prints it as an RFC 9562 version 8 UUID. The zero ExecutionID means "not
// admitted".
type ExecutionID [16]byte

// newIDPrefix returns a random prefix with the UUID version nibble set to 8.
func newIDPrefix() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	p := binary.BigEndian.Uint64(b[:])
	return p&^(0xf<<12) | 0x8<<12 // version 8 in byte 6's high nibble
}

// set makes id the ExecutionID of call number seq after prefix, in place (a returned
// copy would be stored in two halves and read back whole, which stalls the CPU). The top
// two bits of byte 8 carry the RFC 9562 variant (10).
func (id *ExecutionID) set(prefix, seq uint64) {
	binary.BigEndian.PutUint64(id[:8], prefix)
	binary.BigEndian.PutUint64(id[8:], seq&(1<<62-1)|1<<63)
}

// IsZero reports whether id is the zero ExecutionID (no call was admitted).
func (id ExecutionID) IsZero() bool { return id == ExecutionID{} }

// String formats id as a UUID: xxxxxxxx-xxxx-8xxx-xxxx-xxxxxxxxxxxx.
func (id ExecutionID) String() string {
	var buf [36]byte
	hex.Encode(buf[0:8], id[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], id[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], id[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], id[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], id[10:])
	return string(buf[:])
}

// MarshalText encodes id in its UUID form.
func (id ExecutionID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }
