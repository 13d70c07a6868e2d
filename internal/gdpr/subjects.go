// Package gdpr serves data subjects and retention on the audit log (docs/gdpr.md): it seals the
// personal data of records about a data subject under that subject's key, kept outside the
// hashed records; exports a subject's records (access, portability); erases a subject by
// destroying the key; prunes records past their retention; and keeps legal holds, which stop
// both pruning and erasure of what they cover.
package gdpr

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/audit"
	"github.com/mcpguard/mcpguard/internal/store"
)

// MinSecretBytes is the shortest deployment secret accepted.
const MinSecretBytes = 32

// MaxSubjectBytes bounds a subject identifier.
const MaxSubjectBytes = 256

// otherSubject replaces the identifier of another data subject in what is sealed for one.
const otherSubject = "[another data subject]"

// CommitmentPrefix starts the value that replaces a subject identifier in a record's arguments.
const CommitmentPrefix = "subject:"

// Subjects seals and opens the personal data of records about data subjects. It implements
// audit.Sealer. Safe for concurrent use.
type Subjects struct {
	keys      store.Compliance
	commitKey []byte
	wrap      cipher.AEAD
	tools     map[string][][]string
	now       func() time.Time
	rand      io.Reader
}

// Options configures NewSubjects.
type Options struct {
	// Tools maps a tool name, as audit records name it, to the argument paths where a subject
	// identifier appears ("client_id", "order.client.id": object keys joined by dots).
	Tools map[string][]string
	Now   func() time.Time // default time.Now
	Rand  io.Reader        // default crypto/rand
}

// NewSubjects returns the sealer over the key table keys. secret is the deployment secret
// (at least MinSecretBytes): it keys the commitments and wraps every subject key, so neither the
// log nor the key table alone reveals a subject.
func NewSubjects(keys store.Compliance, secret []byte, opts *Options) (*Subjects, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the data-subject secret has %d bytes, need at least %d", len(secret), MinSecretBytes)
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	wrap, err := newAEAD(derive(secret, "mcpguard subject key wrapping v1"))
	if err != nil {
		return nil, err
	}
	s := &Subjects{keys: keys, commitKey: derive(secret, "mcpguard subject commitment v1"), wrap: wrap,
		tools: map[string][][]string{}, now: o.Now, rand: o.Rand}
	for tool, paths := range o.Tools {
		for _, p := range paths {
			parts, err := ParsePath(p)
			if err != nil {
				return nil, fmt.Errorf("tool %s: %w", tool, err)
			}
			s.tools[tool] = append(s.tools[tool], parts)
		}
	}
	return s, nil
}

// ParsePath splits an argument path ("order.client.id") into its object keys.
func ParsePath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("an argument path is empty")
	}
	parts := strings.Split(p, ".")
	for _, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("argument path %q has an empty key (two dots, or a dot at an end)", p)
		}
	}
	return parts, nil
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Commitment returns the keyed commitment of a subject identifier: hex HMAC-SHA256 under a key
// derived from the deployment secret. Without the secret it cannot be computed from a guess.
func (s *Subjects) Commitment(id string) string {
	m := hmac.New(sha256.New, s.commitKey)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckSubject says what is wrong with a subject identifier given by an operator.
func CheckSubject(id string) error {
	switch {
	case id == "":
		return errors.New("the subject identifier is empty")
	case len(id) > MaxSubjectBytes:
		return fmt.Errorf("the subject identifier has %d bytes, at most %d", len(id), MaxSubjectBytes)
	}
	return nil
}

// Sealing is what one record seals for one subject: the identifier, where it appeared, and the
// record's redacted arguments with other subjects' identifiers replaced.
type Sealing struct {
	Subject   string          `json:"subject"`
	Paths     []string        `json:"paths"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Seal implements audit.Sealer.
func (s *Subjects) Seal(ctx context.Context, rec *audit.Record, redact func([]byte) []byte) error {
	paths, ok := s.tools[rec.Tool]
	if !ok {
		return nil
	}
	var args map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Arguments))
	dec.UseNumber()
	if err := dec.Decode(&args); err != nil {
		return nil // not an object: no subject path can match
	}
	type found struct {
		id    string
		paths []string
	}
	var subjects []found
	for _, p := range paths {
		id, ok := lookup(args, p)
		if !ok {
			continue
		}
		name := strings.Join(p, ".")
		dup := false
		for i := range subjects {
			if subjects[i].id == id {
				subjects[i].paths = append(subjects[i].paths, name)
				dup = true
			}
		}
		if !dup {
			subjects = append(subjects, found{id: id, paths: []string{name}})
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	commit := make(map[string]string, len(subjects))
	for _, f := range subjects {
		commit[f.id] = s.Commitment(f.id)
	}
	sealed := make([]audit.Sealed, 0, len(subjects))
	for _, f := range subjects {
		c := commit[f.id]
		// Each subject's copy names only that subject.
		own, err := replaced(args, paths, func(id string) string {
			if id == f.id {
				return id
			}
			return otherSubject
		})
		if err != nil {
			return err
		}
		plain, err := json.Marshal(Sealing{Subject: f.id, Paths: f.paths, Arguments: redact(own)})
		if err != nil {
			return err
		}
		kid, aead, err := s.key(ctx, c, true)
		if err != nil {
			return err
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := io.ReadFull(s.rand, nonce); err != nil {
			return err
		}
		ct := aead.Seal(nonce, nonce, plain, []byte(c+"|"+kid))
		sealed = append(sealed, audit.Sealed{Commitment: c, KeyID: kid, Ciphertext: base64.StdEncoding.EncodeToString(ct)})
	}
	public, err := replaced(args, paths, func(id string) string { return CommitmentPrefix + commit[id] })
	if err != nil {
		return err
	}
	rec.Arguments, rec.Subjects = public, sealed
	return nil
}

// lookup returns the subject identifier at path in args: a string, or a number's text.
func lookup(args map[string]any, path []string) (string, bool) {
	var v any = args
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, x != "" && len(x) <= MaxSubjectBytes
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// replaced returns args encoded with the identifier at every path replaced by with(identifier).
func replaced(args map[string]any, paths [][]string, with func(string) string) ([]byte, error) {
	cp := clone(args).(map[string]any)
	for _, p := range paths {
		id, ok := lookup(cp, p)
		if !ok {
			continue
		}
		m := cp
		for _, k := range p[:len(p)-1] {
			m = m[k].(map[string]any)
		}
		m[p[len(p)-1]] = with(id)
	}
	return json.Marshal(cp)
}

// clone copies the maps along which replaced writes.
func clone(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = clone(x)
	}
	return out
}

// key returns the subject key of commitment c, creating it when create is set and there is
// none (a concurrent creator's key wins: PutSubjectKey keeps the first).
func (s *Subjects) key(ctx context.Context, c string, create bool) (string, cipher.AEAD, error) {
	k, err := s.keys.SubjectKey(ctx, c)
	if errors.Is(err, store.ErrNotFound) && create {
		raw := make([]byte, 32)
		id := make([]byte, 12)
		if _, err := io.ReadFull(s.rand, raw); err != nil {
			return "", nil, err
		}
		if _, err := io.ReadFull(s.rand, id); err != nil {
			return "", nil, err
		}
		kid := hex.EncodeToString(id)
		nonce := make([]byte, s.wrap.NonceSize())
		if _, err := io.ReadFull(s.rand, nonce); err != nil {
			return "", nil, err
		}
		wrapped := s.wrap.Seal(nonce, nonce, raw, []byte(c+"|"+kid))
		k, err = s.keys.PutSubjectKey(ctx, store.SubjectKey{Commitment: c, KeyID: kid, Wrapped: wrapped, Created: s.now().UTC()})
	}
	if err != nil {
		return "", nil, fmt.Errorf("subject key: %w", err)
	}
	aead, err := s.unwrap(k)
	if err != nil {
		return "", nil, err
	}
	return k.KeyID, aead, nil
}

// unwrap decrypts a stored subject key.
func (s *Subjects) unwrap(k store.SubjectKey) (cipher.AEAD, error) {
	ns := s.wrap.NonceSize()
	if len(k.Wrapped) < ns {
		return nil, fmt.Errorf("subject key %s: too short", k.KeyID)
	}
	raw, err := s.wrap.Open(nil, k.Wrapped[:ns], k.Wrapped[ns:], []byte(k.Commitment+"|"+k.KeyID))
	if err != nil {
		return nil, fmt.Errorf("subject key %s does not open with this deployment's secret (another secret, or an edited key table)", k.KeyID)
	}
	return newAEAD(raw)
}

// open decrypts what a record sealed for a subject with aead.
func open(aead cipher.AEAD, sl audit.Sealed) (*Sealing, error) {
	ct, err := base64.StdEncoding.DecodeString(sl.Ciphertext)
	if err != nil || len(ct) < aead.NonceSize() {
		return nil, errors.New("the sealed data is not base64 of a nonce and a ciphertext")
	}
	plain, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(sl.Commitment+"|"+sl.KeyID))
	if err != nil {
		return nil, errors.New("the sealed data does not open with the subject's key")
	}
	var out Sealing
	if err := json.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("the sealed data does not decode: %w", err)
	}
	return &out, nil
}
