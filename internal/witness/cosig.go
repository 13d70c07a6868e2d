package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note signature type of timestamped Ed25519 checkpoint
// cosignatures (C2SP tlog-cosignature, cosignature/v1).
const algCosignatureV1 = 0x04

// cosignatureSize is the length of a cosignature/v1 signature: a big-endian uint64 timestamp
// and an Ed25519 signature.
const cosignatureSize = 8 + ed25519.SignatureSize

// GenerateKey returns a new witness key named name: the signing key
// ("PRIVATE+KEY+<name>+<key id>+<base64 of 0x04 and the Ed25519 seed>", for this witness only)
// and its verifier key ("<name>+<key id>+<base64 of 0x04 and the public key>", a C2SP vkey of
// signature type 0x04), which is all a gateway or a verifier needs to check its cosignatures.
func GenerateKey(name string) (signerKey, verifierKey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("witness key name %q: want a non-empty name without spaces or '+'", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	h := keyHash(name, pub)
	signerKey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	verifierKey = fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
	return signerKey, verifierKey, nil
}

// keyHash is the key id of a cosignature/v1 key: the first four bytes of
// SHA-256(name || "\n" || 0x04 || public key).
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is the signed-note rule for key names: non-empty, valid UTF-8, no spaces, no '+'.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// cosignedMessage is what a cosignature/v1 signs: a header line, the timestamp line and the
// checkpoint's note text.
func cosignedMessage(t uint64, text []byte) []byte {
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t)
	return append(msg, text...)
}

// Cosigner signs checkpoints with a witness key: a note.Signer whose signatures are
// cosignature/v1 (a timestamp from its clock, then Ed25519 over the timestamped message).
type Cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

// NewCosigner reads a signing key written by GenerateKey. now is the clock of the timestamps
// (nil: time.Now).
func NewCosigner(signerKey string, now func() time.Time) (*Cosigner, error) {
	rest, ok := strings.CutPrefix(signerKey, "PRIVATE+KEY+")
	if !ok {
		return nil, errors.New("not a witness signing key (want the .key file from mcpguard witness keygen)")
	}
	name, key, hash, err := splitKey(rest)
	if err != nil || len(key) != ed25519.SeedSize {
		return nil, errors.New("malformed witness signing key")
	}
	priv := ed25519.NewKeyFromSeed(key)
	if keyHash(name, priv.Public().(ed25519.PublicKey)) != hash {
		return nil, errors.New("witness signing key: its key id does not match the key")
	}
	if now == nil {
		now = time.Now
	}
	return &Cosigner{name: name, hash: hash, key: priv, now: now}, nil
}

// LoadCosigner reads a witness signing key from a file that group and others cannot read.
func LoadCosigner(path string, now func() time.Time) (*Cosigner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("witness signing key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("witness signing key %s: mode %v lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness signing key: %w", err)
	}
	c, err := NewCosigner(strings.TrimSpace(string(b)), now)
	if err != nil {
		return nil, fmt.Errorf("witness signing key %s: %w", path, err)
	}
	return c, nil
}

// Name returns the key's name.
func (c *Cosigner) Name() string { return c.name }

// KeyHash returns the key id.
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// Sign returns the cosignature/v1 of a checkpoint's note text, timestamped now.
func (c *Cosigner) Sign(text []byte) ([]byte, error) {
	t := c.now().Unix()
	if t <= 0 {
		return nil, fmt.Errorf("cosign: the clock says %d, before 1970", t)
	}
	sig := make([]byte, 8, cosignatureSize)
	binary.BigEndian.PutUint64(sig, uint64(t))
	return append(sig, ed25519.Sign(c.key, cosignedMessage(uint64(t), text))...), nil
}

// Verifier returns the verifier of this key's cosignatures.
func (c *Cosigner) Verifier() note.Verifier {
	return &cosigVerifier{name: c.name, hash: c.hash, key: c.key.Public().(ed25519.PublicKey)}
}

// NewVerifier reads a witness verifier key ("<name>+<key id>+<base64>", signature type 0x04) as
// GenerateKey writes it. Its Verify accepts cosignature/v1 signatures by that key.
func NewVerifier(verifierKey string) (note.Verifier, error) {
	name, key, hash, err := splitKey(verifierKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("malformed witness verifier key %q (want name+keyid+key, as mcpguard witness keygen prints it)", verifierKey)
	}
	if keyHash(name, key) != hash {
		return nil, fmt.Errorf("witness verifier key %q: its key id does not match the key", verifierKey)
	}
	return &cosigVerifier{name: name, hash: hash, key: ed25519.PublicKey(key)}, nil
}

// splitKey splits "<name>+<key id>+<base64 of type and key>" and checks the type byte.
func splitKey(s string) (name string, key []byte, hash uint32, err error) {
	name, rest, ok1 := strings.Cut(s, "+")
	h, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(h) != 8 {
		return "", nil, 0, errors.New("malformed key")
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return "", nil, 0, errors.New("malformed key id")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) < 1 || raw[0] != algCosignatureV1 {
		return "", nil, 0, errors.New("not a cosignature/v1 (type 0x04) key")
	}
	return name, raw[1:], uint32(n), nil
}

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v *cosigVerifier) Name() string    { return v.name }
func (v *cosigVerifier) KeyHash() uint32 { return v.hash }

// Verify checks a cosignature/v1 over a checkpoint's note text.
func (v *cosigVerifier) Verify(text, sig []byte) bool {
	if len(sig) != cosignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t == 0 || t > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.key, cosignedMessage(t, text), sig[8:])
}
