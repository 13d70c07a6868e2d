package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const origin = "mcpguard.audit/log"

// fakeLog is a Merkle log in memory with a signing key, standing for the audit log.
type fakeLog struct {
	t      testing.TB
	origin string
	signer note.Signer
	stored []tlog.Hash
	n      int64
}

func newFakeLog(t testing.TB, name string) (*fakeLog, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(nil, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeLog{t: t, origin: origin, signer: s}, v
}

func (l *fakeLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(l.stored)) {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = l.stored[x]
		}
		return out, nil
	})
}

// grow appends records "<prefix><i>" until the log holds n.
func (l *fakeLog) grow(n int64, prefix string) *fakeLog {
	for ; l.n < n; l.n++ {
		hs, err := tlog.StoredHashes(l.n, fmt.Appendf(nil, "%s%d", prefix, l.n), l.reader())
		if err != nil {
			l.t.Fatal(err)
		}
		l.stored = append(l.stored, hs...)
	}
	return l
}

func (l *fakeLog) root(n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, l.reader())
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

func (l *fakeLog) b64root(n int64) string {
	h := l.root(n)
	return base64.StdEncoding.EncodeToString(h[:])
}

// checkpoint signs the checkpoint of the first n records.
func (l *fakeLog) checkpoint(n int64) []byte {
	h := l.root(n)
	msg, err := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(h[:]))}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return msg
}

func (l *fakeLog) proof(old, n int64) tlog.TreeProof {
	if old == 0 || old == n {
		return nil
	}
	p, err := tlog.ProveTree(n, old, l.reader())
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// request is an add-checkpoint body from old to the log's first n records.
func (l *fakeLog) request(old, n int64) []byte {
	return formatAddRequest(old, l.proof(old, n), l.checkpoint(n))
}

type fixture struct {
	dir    string
	log    *fakeLog
	logKey note.Verifier
	signer *Cosigner
	w      *Witness
	srv    *httptest.Server
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), now: time.Unix(1_790_000_000, 0)}
	f.log, f.logKey = newFakeLog(t, "ops-log")
	skey, _, err := GenerateKey("witness-1.example")
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, err = NewCosigner(skey, func() time.Time { return f.now }); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	return f
}

// start opens the witness on the fixture's state directory and serves it on loopback.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	w, err := New(f.dir, f.signer, []Log{{Origin: origin, Verifiers: []note.Verifier{f.logKey}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
	if f.srv != nil {
		f.srv.Close()
	}
	f.srv = httptest.NewServer(w.Handler())
	t.Cleanup(f.srv.Close)
}

type reply struct {
	status int
	ctype  string
	body   string
}

func (f *fixture) post(t *testing.T, body []byte) reply {
	t.Helper()
	resp, err := http.Post(f.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

func (f *fixture) get(t *testing.T, path string) reply {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// mustCosign posts body and checks that the answer is a cosignature of the checkpoint of n
// records, checked independently of the package's verifier: key id, timestamp, Ed25519 over
// the cosignature/v1 message (C2SP tlog-cosignature).
func (f *fixture) mustCosign(t *testing.T, body []byte, n int64) {
	t.Helper()
	r := f.post(t, body)
	if r.status != http.StatusOK {
		t.Fatalf("add-checkpoint of %d records: %d %s", n, r.status, r.body)
	}
	name, b64, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(r.body, "— "), "\n"), " ")
	if !ok || name != "witness-1.example" || strings.Count(r.body, "\n") != 1 {
		t.Fatalf("answer %q, want one signature line by witness-1.example", r.body)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) != 4+8+64 {
		t.Fatalf("signature %q: %d bytes, want key id, timestamp and Ed25519 (76)", b64, len(sig))
	}
	pub := f.signer.key.Public().(ed25519.PublicKey)
	id := sha256.Sum256(append([]byte("witness-1.example\n\x04"), pub...))
	if !bytes.Equal(sig[:4], id[:4]) {
		t.Errorf("key id %x, want SHA-256(name \\n 0x04 key)[:4] = %x", sig[:4], id[:4])
	}
	if ts := binary.BigEndian.Uint64(sig[4:12]); ts != uint64(f.now.Unix()) {
		t.Errorf("timestamp %d, want %d", ts, f.now.Unix())
	}
	h := f.log.root(n)
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s\n%d\n%s\n", f.now.Unix(), origin, n, base64.StdEncoding.EncodeToString(h[:]))
	if !ed25519.Verify(pub, []byte(msg), sig[12:]) {
		t.Errorf("the cosignature does not verify over the cosignature/v1 message")
	}
}

// TestAddCheckpointOnlyCosignsExtensions: the witness cosigns a first checkpoint, then only a
// checkpoint that extends the one it cosigned (a valid consistency proof from exactly its size),
// answering 409 with its size to a client that names another old size, and 422 to a log that
// was rewritten or forked.
func TestAddCheckpointOnlyCosignsExtensions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(40, "r")
	f.mustCosign(t, f.log.request(0, 10), 10)

	if r := f.post(t, f.log.request(0, 20)); r.status != http.StatusConflict || r.body != "10\n" || r.ctype != "text/x.tlog.size" {
		t.Errorf("old 0 after cosigning 10: %d %q %q, want 409, text/x.tlog.size, \"10\\n\"", r.status, r.ctype, r.body)
	}
	if r := f.post(t, f.log.request(5, 20)); r.status != http.StatusConflict || r.body != "10\n" {
		t.Errorf("old 5: %d %q, want 409 10", r.status, r.body)
	}
	f.mustCosign(t, f.log.request(10, 20), 20)
	f.mustCosign(t, f.log.request(20, 20), 20) // the same tree again

	// A log rewritten from record 15 on: same sizes, other roots.
	forked, _ := newFakeLog(t, "ops-log")
	forked.signer = f.log.signer
	forked.grow(15, "r").grow(40, "forged")
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"forked tree of the same size", formatAddRequest(20, nil, forked.checkpoint(20)), http.StatusUnprocessableEntity},
		{"forked tree with its own proof", forked.request(20, 30), http.StatusUnprocessableEntity},
		{"right tree, proof of another size", formatAddRequest(20, f.log.proof(10, 30), f.log.checkpoint(30)), http.StatusUnprocessableEntity},
		{"a proof from size 20 to 20", formatAddRequest(20, f.log.proof(10, 20), f.log.checkpoint(20)), http.StatusUnprocessableEntity},
		{"old size larger than the new", formatAddRequest(30, nil, f.log.checkpoint(25)), http.StatusBadRequest},
		{"rolled back", formatAddRequest(20, nil, f.log.checkpoint(15)), http.StatusBadRequest},
	} {
		if r := f.post(t, tc.body); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	// Still at 20: the refusals changed nothing.
	f.mustCosign(t, f.log.request(20, 40), 40)
}

// TestFirstCheckpointRules: from size 0 no proof is allowed, and a checkpoint of 0 records must
// have the empty tree's root.
func TestFirstCheckpointRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(8, "r")
	if r := f.post(t, formatAddRequest(0, f.log.proof(4, 8), f.log.checkpoint(8))); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a proof from size 0: %d %s, want 422", r.status, r.body)
	}
	empty, err := note.Sign(&note.Note{Text: origin + "\n0\n" + f.log.b64root(8) + "\n"}, f.log.signer)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.post(t, formatAddRequest(0, nil, empty)); r.status != http.StatusUnprocessableEntity {
		t.Errorf("size 0 with a non-empty root: %d %s, want 422", r.status, r.body)
	}
	if r := f.get(t, "/"+OriginHash(origin)+"/checkpoint"); r.status != http.StatusNotFound {
		t.Errorf("checkpoint before any cosignature: %d, want 404", r.status)
	}
}

// TestSignaturesAndOrigins: a checkpoint of an unknown log is 404; one not signed by the log's
// key, or whose signature was altered, 403; nothing is cosigned.
func TestSignaturesAndOrigins(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(10, "r")
	other, _ := newFakeLog(t, "ops-log") // same name, another key
	other.grow(10, "r")
	stranger, _ := newFakeLog(t, "ops-log")
	stranger.origin = "example.com/another-log"
	stranger.grow(10, "r")

	// The log's signature with one bit of its Ed25519 part flipped.
	good := f.log.checkpoint(10)
	i := bytes.LastIndexByte(good[:len(good)-1], ' ') + 1
	sig, err := base64.StdEncoding.DecodeString(string(good[i : len(good)-1]))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	altered := append(append(append([]byte(nil), good[:i]...), base64.StdEncoding.EncodeToString(sig)...), '\n')
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"signed by another key", other.request(0, 10), http.StatusForbidden},
		{"signature altered", formatAddRequest(0, nil, altered), http.StatusForbidden},
		{"unsigned", formatAddRequest(0, nil, []byte(origin+"\n10\n"+f.log.b64root(10)+"\n")), http.StatusBadRequest},
		{"unknown origin", stranger.request(0, 10), http.StatusNotFound},
	} {
		if r := f.post(t, tc.body); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	if r := f.post(t, f.log.request(1, 10)); r.status != http.StatusConflict || r.body != "0\n" {
		t.Errorf("after refusals: %d %q, want 409 0 (nothing was cosigned)", r.status, r.body)
	}
}

// TestStateSurvivesRestart: a restarted witness still holds what it cosigned (409 with that
// size, and GET serves it with the log's signature and its own cosignature); a state file that
// does not carry its cosignature keeps it from starting.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(30, "r")
	f.mustCosign(t, f.log.request(0, 10), 10)
	f.mustCosign(t, f.log.request(10, 25), 25)

	f.start(t) // a new process on the same state directory
	if r := f.post(t, f.log.request(0, 30)); r.status != http.StatusConflict || r.body != "25\n" {
		t.Fatalf("after restart: %d %q, want 409 25", r.status, r.body)
	}
	r := f.get(t, "/"+OriginHash(origin)+"/checkpoint")
	if r.status != http.StatusOK {
		t.Fatalf("GET checkpoint: %d %s", r.status, r.body)
	}
	n, err := note.Open([]byte(r.body), note.VerifierList(f.logKey, f.signer.Verifier()))
	if err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(n.Text, origin+"\n25\n") {
		t.Errorf("GET checkpoint: %v, %+v, want the checkpoint of 25 with the log's signature and the cosignature", err, n)
	}
	if r := f.get(t, "/"+OriginHash("example.com/another-log")+"/checkpoint"); r.status != http.StatusNotFound {
		t.Errorf("GET checkpoint of another log: %d, want 404", r.status)
	}
	f.mustCosign(t, f.log.request(25, 30), 30)

	// A state file replaced by an older checkpoint the log signed (without the witness's
	// cosignature), or garbled: the witness refuses to start rather than forget.
	state := filepath.Join(f.dir, stateName(origin))
	for _, content := range [][]byte{f.log.checkpoint(10), []byte("garbage")} {
		if err := os.WriteFile(state, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(f.dir, f.signer, []Log{{Origin: origin, Verifiers: []note.Verifier{f.logKey}}}, nil); err == nil || !strings.Contains(err.Error(), "start a new witness") {
			t.Errorf("New with a state file holding %.20q: %v, want a refusal", content, err)
		}
	}
}

// TestRequestBounds: a body over 64 KiB is refused with 413, a proof of more than 63 lines and
// malformed bodies with 400, other methods with 405.
func TestRequestBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.log.grow(10, "r")
	cp := f.log.checkpoint(10)
	long := make(tlog.TreeProof, MaxProofLines+1)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"body over 64 KiB", append(formatAddRequest(0, nil, cp), bytes.Repeat([]byte("x"), MaxBodyBytes)...), http.StatusRequestEntityTooLarge},
		{"64 proof lines", formatAddRequest(5, long, cp), http.StatusBadRequest},
		{"no empty line", []byte("old 0\n" + string(cp)), http.StatusBadRequest},
		{"leading zero", append([]byte("old 00\n\n"), cp...), http.StatusBadRequest},
		{"no old line", cp, http.StatusBadRequest},
		{"short hash", append([]byte("old 5\nAAAA\n\n"), cp...), http.StatusBadRequest},
		{"empty body", nil, http.StatusBadRequest},
	} {
		if r := f.post(t, tc.body); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	if r := f.get(t, "/add-checkpoint"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint: %d, want 405", r.status)
	}
}

// TestCosignerKeys: keys round-trip, a verifier rejects another key's cosignature and a
// changed timestamp, and malformed keys are refused.
func TestCosignerKeys(t *testing.T) {
	t.Parallel()
	skey, vkey, err := GenerateKey("w1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCosigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil || v.Name() != "w1" || v.KeyHash() != c.KeyHash() {
		t.Fatalf("NewVerifier(%q): %v", vkey, err)
	}
	text := []byte(origin + "\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n")
	sig, err := c.Sign(text)
	if err != nil || !v.Verify(text, sig) {
		t.Fatalf("Sign/Verify: %v", err)
	}
	sig[7] ^= 1 // the timestamp is signed too
	if v.Verify(text, sig) {
		t.Error("a cosignature with a changed timestamp verified")
	}
	skey2, _, _ := GenerateKey("w1")
	c2, _ := NewCosigner(skey2, nil)
	sig2, _ := c2.Sign(text)
	if v.Verify(text, sig2) {
		t.Error("another key's cosignature verified")
	}
	for _, bad := range []string{"", "w1", "w 1+00000000+BAAA", strings.Replace(vkey, "+", "+0", 1), vkey[:len(vkey)-4] + "AAA="} {
		if _, err := NewVerifier(bad); err == nil {
			t.Errorf("NewVerifier(%q) accepted it", bad)
		}
	}
	if _, err := NewCosigner(vkey, nil); err == nil {
		t.Error("NewCosigner accepted a verifier key")
	}
	if _, _, err := GenerateKey("a+b"); err == nil {
		t.Error("GenerateKey accepted a name with '+'")
	}
	if _, _, err := GenerateKey("has space"); err == nil {
		t.Error("GenerateKey accepted a name with a space")
	}
}
