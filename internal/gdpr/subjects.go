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
	"slices"
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

// arrayMark is the path part that stands for every element of an array: "clients[*].id".
const arrayMark = "[*]"

// MaxSubjectsPerRecord bounds the data subjects one record names: each is a key read or made,
// and a sealing, on the call's path. A call naming more is not recorded, so it is refused.
const MaxSubjectsPerRecord = 64

// ErrTooManySubjects refuses a record that names more than MaxSubjectsPerRecord subjects.
var ErrTooManySubjects = fmt.Errorf("%w: it names more than %d data subjects, and one audit record seals at most that many: split it", audit.ErrRecordRefused, MaxSubjectsPerRecord)

// ParsePath splits an argument path into its parts: object keys, and arrayMark after a key
// whose value is an array each element of which is followed ("order.client.id",
// "clients[*].id", "ids[*]").
func ParsePath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("an argument path is empty")
	}
	var parts []string
	for _, part := range strings.Split(p, ".") {
		key, arrays := part, 0
		for strings.HasSuffix(key, arrayMark) {
			key, arrays = strings.TrimSuffix(key, arrayMark), arrays+1
		}
		switch {
		case key == "":
			return nil, fmt.Errorf("argument path %q has an empty key (two dots, a dot at an end, or [*] without a key)", p)
		case strings.ContainsAny(key, "[]"):
			return nil, fmt.Errorf("argument path %q: %q: write an array as key[*] (every element); indexes are not supported", p, part)
		}
		parts = append(parts, key)
		for range arrays {
			parts = append(parts, arrayMark)
		}
	}
	return parts, nil
}

// pathName is the path of parts as configured.
func pathName(parts []string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 && p != arrayMark {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
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
		name := pathName(p)
		visit(args, p, func(id string) (string, bool) {
			for i := range subjects {
				if subjects[i].id == id {
					if !slices.Contains(subjects[i].paths, name) {
						subjects[i].paths = append(subjects[i].paths, name)
					}
					return "", false
				}
			}
			subjects = append(subjects, found{id: id, paths: []string{name}})
			return "", false
		})
	}
	if len(subjects) == 0 {
		return nil
	}
	if len(subjects) > MaxSubjectsPerRecord {
		return ErrTooManySubjects
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

// visit calls fn with every subject identifier at path under v (a string, or a number's text)
// and, where fn says so, puts what it returns in the identifier's place.
func visit(v any, path []string, fn func(id string) (string, bool)) {
	at := func(x any) (string, bool) {
		if len(path) > 1 {
			visit(x, path[1:], fn)
			return "", false
		}
		id, ok := identifier(x)
		if !ok {
			return "", false
		}
		return fn(id)
	}
	if path[0] == arrayMark {
		arr, _ := v.([]any)
		for i, x := range arr {
			if r, set := at(x); set {
				arr[i] = r
			}
		}
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if x, ok := m[path[0]]; ok {
		if r, set := at(x); set {
			m[path[0]] = r
		}
	}
}

// identifier is the subject identifier v holds: a non-empty string of at most MaxSubjectBytes,
// or a number's text.
func identifier(v any) (string, bool) {
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
	cp := clone(args)
	for _, p := range paths {
		visit(cp, p, func(id string) (string, bool) { return with(id), true })
	}
	return json.Marshal(cp)
}

// clone copies the maps and arrays along which replaced writes.
func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = clone(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = clone(e)
		}
		return out
	}
	return v
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
