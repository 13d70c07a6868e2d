package report

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Format is the form of a report file.
type Format string

// Formats.
const (
	FormatHTML Format = "html"
	FormatJSON Format = "json"
	FormatPDF  Format = "pdf"
)

// The signed statement. Its text (a signed note, like the log's checkpoints) is:
//
//	mcpguard compliance report
//	format html
//	digest sha256:<hex of the signed bytes>
//	origin <the log's origin>
//	period <from> <to>
//	records <records in the log when it was verified>
//	key <the log's verifier key>
//
// An HTML report carries it in a final <pre id="report-signature"> block and the digest covers
// every byte before that block; a JSON report carries it in "signature" and the digest covers the
// bytes of its "report" member; a PDF's is in FILE.sig and the digest covers the whole file.
const (
	statementHeader = "mcpguard compliance report"
	htmlSigOpen     = `<pre id="report-signature">`
	htmlSigClose    = "</pre>\n</body>\n</html>\n"
	jsonOpen        = `{"report":`
	jsonSigMember   = `,"signature":`
)

// Statement is what a report's signature says.
type Statement struct {
	Format  Format
	Digest  string // "sha256:" and hex
	Origin  string
	From    time.Time
	To      time.Time
	Records int64
	// Key is the log's verifier key as the statement names it.
	Key string
}

func (s *Statement) text() string {
	return fmt.Sprintf("%s\nformat %s\ndigest %s\norigin %s\nperiod %s %s\nrecords %d\nkey %s\n", statementHeader, s.Format, s.Digest,
		s.Origin, s.From.UTC().Format(time.RFC3339Nano), s.To.UTC().Format(time.RFC3339Nano), s.Records, s.Key)
}

// parseStatement reads a statement's text strictly: every line, in order.
func parseStatement(text string) (*Statement, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	want := []string{"", "format", "digest", "origin", "period", "records", "key"}
	if len(lines) != len(want) || lines[0] != statementHeader {
		return nil, errors.New("the signed text is not a report statement")
	}
	val := make([]string, len(want))
	for i := 1; i < len(want); i++ {
		name, v, ok := strings.Cut(lines[i], " ")
		if !ok || name != want[i] || v == "" {
			return nil, fmt.Errorf("the signed text's line %d is not %q", i+1, want[i])
		}
		val[i] = v
	}
	s := &Statement{Format: Format(val[1]), Digest: val[2], Origin: val[3], Key: val[6]}
	from, to, ok := strings.Cut(val[4], " ")
	var err1, err2 error
	s.From, err1 = time.Parse(time.RFC3339Nano, from)
	s.To, err2 = time.Parse(time.RFC3339Nano, to)
	if !ok || err1 != nil || err2 != nil {
		return nil, errors.New("the signed text's period is not two RFC 3339 times")
	}
	n, err := strconv.ParseInt(val[5], 10, 64)
	if err != nil || n < 0 {
		return nil, errors.New("the signed text's record count is not a number")
	}
	s.Records = n
	if !strings.HasPrefix(s.Digest, "sha256:") || len(s.Digest) != len("sha256:")+64 {
		return nil, errors.New("the signed text's digest is not sha256:<64 hex digits>")
	}
	return s, nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Key is the log's signing key with its verifier key, which reports name so that a reader can
// compare it with the key the log's operator publishes.
type Key struct {
	Signer   note.Signer
	Verifier string
}

// LoadKey reads the log's signing key (`mcpguard audit keygen`, audit.signing_key_file) from a
// file that group and others cannot read, and derives its verifier key.
func LoadKey(path string) (*Key, error) {
	skey, err := audit.ReadSigningKey(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(skey)
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	return k, nil
}

// ParseKey reads a note signing key ("PRIVATE+KEY+name+hash+base64", Ed25519) and derives its
// verifier key.
func ParseKey(skey string) (*Key, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, errors.New("not a signing key (want the .key file from mcpguard audit keygen)")
	}
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 signing key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != signer.KeyHash() {
		return nil, errors.New("the derived verifier key does not match the signing key")
	}
	return &Key{Signer: signer, Verifier: vkey}, nil
}

// sign returns the signed statement over signed, for a report r in format f.
func sign(k *Key, f Format, signed []byte, r *Report) ([]byte, error) {
	s := Statement{Format: f, Digest: digest(signed), Origin: r.Origin, From: r.From, To: r.To,
		Records: r.Verification.Records, Key: k.Verifier}
	msg, err := note.Sign(&note.Note{Text: s.text()}, k.Signer)
	if err != nil {
		return nil, fmt.Errorf("sign the report: %w", err)
	}
	return msg, nil
}

// sealHTML appends the signature block to an HTML page that ends just before it (the page's
// template leaves </body></html> to it).
func sealHTML(page, sig []byte) []byte {
	out := make([]byte, 0, len(page)+len(sig)+64)
	out = append(out, page...)
	out = append(out, htmlSigOpen...)
	out = append(out, html.EscapeString(string(sig))...)
	return append(out, htmlSigClose...)
}

// sealJSON joins a report's JSON and its signature into the file's exact layout.
func sealJSON(body, sig []byte) ([]byte, error) {
	q, err := json.Marshal(string(sig))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+len(q)+32)
	out = append(out, jsonOpen...)
	out = append(out, body...)
	out = append(out, jsonSigMember...)
	out = append(out, q...)
	return append(out, "}\n"...), nil
}

// ErrRefused wraps every reason VerifyFile refuses a report.
var ErrRefused = errors.New("report refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// Verified is what VerifyFile found.
type Verified struct {
	Statement
	// KeyName is the name of the key whose signature verified.
	KeyName string
	// Trusted reports whether the signature was checked with a key the caller gave; without
	// one it was checked with the key the report names, which proves the file is intact but not
	// who signed it.
	Trusted bool
}

// SniffFormat tells a report file's format from its first bytes.
func SniffFormat(data []byte) Format {
	switch {
	case bytes.HasPrefix(data, []byte("%PDF")):
		return FormatPDF
	case bytes.HasPrefix(data, []byte(jsonOpen)):
		return FormatJSON
	default:
		return FormatHTML
	}
}

// VerifyFile checks a report file: that its signed digest matches its content and that the
// signature verifies, with trusted (the log's verifier key) when given, else with the key the
// report names. detached is the content of FILE.sig, which a PDF needs. Every refusal wraps
// ErrRefused and says exactly what failed.
func VerifyFile(data, detached []byte, trusted note.Verifier) (*Verified, error) {
	f := SniffFormat(data)
	var signed, msg []byte
	switch f {
	case FormatPDF:
		if len(detached) == 0 {
			return nil, refused("a PDF report is signed in its .sig file, and none was given or it is empty")
		}
		signed, msg = data, detached
	case FormatJSON:
		var parts struct {
			Report    json.RawMessage `json:"report"`
			Signature string          `json:"signature"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&parts); err != nil {
			return nil, refused("the JSON report does not parse: %v", err)
		}
		if parts.Signature == "" {
			return nil, refused("the JSON report has no signature")
		}
		again, err := sealJSON(parts.Report, []byte(parts.Signature))
		if err != nil || !bytes.Equal(again, data) {
			return nil, refused("the JSON report is not in the layout it was signed in (a byte outside its \"report\" member was changed, added or removed)")
		}
		signed, msg = parts.Report, []byte(parts.Signature)
	default:
		i := bytes.LastIndex(data, []byte(htmlSigOpen))
		if i < 0 {
			return nil, refused("no signature block (<pre id=\"report-signature\">) was found: the file is not a signed report, or the block was removed")
		}
		tail := data[i+len(htmlSigOpen):]
		if !bytes.HasSuffix(tail, []byte(htmlSigClose)) {
			return nil, refused("the HTML report does not end with its signature block: something was changed or added after it")
		}
		escaped := string(tail[:len(tail)-len(htmlSigClose)])
		sig := html.UnescapeString(escaped)
		if html.EscapeString(sig) != escaped {
			return nil, refused("the signature block was edited (it is not as the report writes it)")
		}
		signed, msg = data[:i], []byte(sig)
	}
	return checkStatement(f, signed, msg, trusted)
}

func checkStatement(f Format, signed, msg []byte, trusted note.Verifier) (*Verified, error) {
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return nil, refused("the signature is not a signed note (no signature lines)")
	}
	st, err := parseStatement(string(text) + "\n")
	if err != nil {
		return nil, refused("%v", err)
	}
	v := trusted
	if v == nil {
		if v, err = note.NewVerifier(st.Key); err != nil {
			return nil, refused("the key the report names (%q) is not a verifier key: %v", st.Key, err)
		}
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unknown *note.UnverifiedNoteError
		if errors.As(err, &unknown) {
			names := make([]string, 0, len(unknown.Note.UnverifiedSigs))
			for _, s := range unknown.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s (key id %08x)", s.Name, s.Hash))
			}
			return nil, refused("the report is signed by %s, not by the key %s (key id %08x)", strings.Join(names, ", "), v.Name(), v.KeyHash())
		}
		return nil, refused("the signature does not verify with the key %s: %v (the signed statement was changed, or the signature forged)", v.Name(), err)
	}
	if n.Text != string(text)+"\n" {
		return nil, refused("the signed statement is not the one shown")
	}
	if st.Format != f {
		return nil, refused("the statement is for a %s report, but the file is %s", st.Format, f)
	}
	if got := digest(signed); got != st.Digest {
		return nil, refused("the content does not match the signed digest: it was changed after it was signed (content %s, signed %s)", got, st.Digest)
	}
	return &Verified{Statement: *st, KeyName: v.Name(), Trusted: trusted != nil}, nil
}
