// Package witness is a transparency-log witness for the audit log (C2SP tlog-witness): a server
// that cosigns a checkpoint only if it is consistent with the last one it cosigned for that log,
// and the client through which the gateway submits every checkpoint it signs.
//
// The server keeps, per log origin, the newest checkpoint it cosigned, in a file of its state
// directory written durably (temporary file, fsync, rename, fsync of the directory) before it
// answers. Checking a request against that state and replacing it happen under one lock, so
// two requests cannot roll the state back (the race tlog-witness describes).
package witness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// Log is a log the witness cosigns for: its origin line and the keys its checkpoints may be
// signed with.
type Log struct {
	Origin    string
	Verifiers []note.Verifier
}

// Options configures a Witness.
type Options struct {
	Logger *slog.Logger // nil: discard
}

// Witness cosigns checkpoints of the logs it is configured with. Its Handler serves
// POST /add-checkpoint and GET /<origin hash>/checkpoint.
type Witness struct {
	signer *Cosigner
	self   note.Verifier
	dir    string
	logs   map[string]note.Verifiers
	byHash map[string]string // OriginHash(origin) → origin
	logger *slog.Logger

	// mu makes each add-checkpoint's check against the state and its update one step.
	mu    sync.Mutex
	state map[string]*head // by origin
}

// head is the newest checkpoint the witness cosigned for a log.
type head struct {
	size int64
	hash tlog.Hash
	// note is the checkpoint with the log's signatures the witness verified and its own
	// cosignature, as GET /<origin hash>/checkpoint serves it.
	note []byte
}

// New opens a witness whose state lives in stateDir (created 0700 if missing). It refuses to
// start when a state file does not carry the witness's own valid cosignature: a witness that
// lost or garbled its state must not be restarted as if it had never cosigned (it would accept
// a rolled-back log); give it a new key and a new directory instead.
func New(stateDir string, signer *Cosigner, logs []Log, opts *Options) (*Witness, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	w := &Witness{signer: signer, self: signer.Verifier(), dir: stateDir, logs: map[string]note.Verifiers{},
		byHash: map[string]string{}, logger: o.Logger, state: map[string]*head{}}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if len(logs) == 0 {
		return nil, errors.New("witness: no log to witness")
	}
	for _, l := range logs {
		if l.Origin == "" || strings.Contains(l.Origin, "\n") || len(l.Verifiers) == 0 {
			return nil, fmt.Errorf("witness: log %q needs an origin line and at least one key", l.Origin)
		}
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: log %q is listed twice", l.Origin)
		}
		w.logs[l.Origin] = note.VerifierList(l.Verifiers...)
		w.byHash[OriginHash(l.Origin)] = l.Origin
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	for origin := range w.logs {
		h, err := w.load(origin)
		if err != nil {
			return nil, err
		}
		if h != nil {
			w.state[origin] = h
		}
	}
	return w, nil
}

// stateName is the state file of a log.
func stateName(origin string) string { return OriginHash(origin) + ".checkpoint" }

// load reads the state of origin (nil when the witness never cosigned for it).
func (w *Witness) load(origin string) (*head, error) {
	path := filepath.Join(w.dir, stateName(origin))
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	n, err := note.Open(b, note.VerifierList(w.self))
	if err != nil {
		return nil, fmt.Errorf("witness state %s does not carry this witness's cosignature (%v): the state or the key changed; a witness must not forget what it cosigned, so start a new witness (new key, new state directory) rather than this one", path, err)
	}
	t, err := parseTree(n.Text)
	if err != nil || t.origin != origin {
		return nil, fmt.Errorf("witness state %s is not a checkpoint of %q", path, origin)
	}
	return &head{size: t.size, hash: t.hash, note: b}, nil
}

// Handler serves the witness's HTTP interface (submission and monitoring prefix both "/").
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.serveAdd)
	mux.HandleFunc("GET /{origin}/checkpoint", w.serveCheckpoint)
	return mux
}

// addError is a refusal of add-checkpoint: the HTTP status and a message for the client (no
// secret is involved: everything the witness holds is public).
type addError struct {
	status int
	msg    string
	size   int64 // for 409: the witness's size
}

func (e *addError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

func refuse(status int, format string, args ...any) *addError {
	return &addError{status: status, msg: fmt.Sprintf(format, args...)}
}

func (w *Witness) serveAdd(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(rw, fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "the body could not be read", http.StatusBadRequest)
		return
	}
	cosig, err := w.add(body)
	if err != nil {
		ae, ok := errors.AsType[*addError](err)
		if !ok {
			w.logger.Error("witness: checkpoint not cosigned", "err", err)
			http.Error(rw, "the witness could not store its state", http.StatusInternalServerError)
			return
		}
		if ae.status == http.StatusConflict {
			rw.Header().Set("Content-Type", sizeContentType)
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", ae.size)
			return
		}
		http.Error(rw, ae.msg, ae.status)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = rw.Write(cosig)
}

// add runs add-checkpoint on a request body and returns the cosignature line(s). Refusals are
// *addError; any other error is the witness's own failure to persist.
func (w *Witness) add(body []byte) ([]byte, error) {
	req, err := parseAddRequest(body)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	origin := firstLine(req.checkpoint)
	keys, ok := w.logs[origin]
	if !ok {
		return nil, refuse(http.StatusNotFound, "unknown log %q", origin)
	}
	n, err := note.Open(req.checkpoint, keys)
	if err != nil {
		if _, bad := errors.AsType[*note.InvalidSignatureError](err); bad {
			return nil, refuse(http.StatusForbidden, "the log's signature does not verify")
		}
		if _, none := errors.AsType[*note.UnverifiedNoteError](err); none {
			return nil, refuse(http.StatusForbidden, "the checkpoint is not signed by a key of log %q", origin)
		}
		return nil, refuse(http.StatusBadRequest, "not a signed note: %v", err)
	}
	t, err := parseTree(n.Text)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "%v", err)
	}
	if req.old > t.size {
		return nil, refuse(http.StatusBadRequest, "old size %d is larger than the checkpoint's %d", req.old, t.size)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.state[origin]
	var curSize int64
	if cur != nil {
		curSize = cur.size
	}
	inconsistent := func(format string, args ...any) error {
		// Possibly evidence of a log rewritten behind its checkpoints: worth an operator's look.
		e := refuse(http.StatusUnprocessableEntity, format, args...)
		w.logger.Warn("witness: refused an inconsistent checkpoint", "origin", origin, "size", t.size, "reason", e.msg)
		return e
	}
	if req.old != curSize {
		return nil, &addError{status: http.StatusConflict, msg: fmt.Sprintf("the witness cosigned %d records, not %d", curSize, req.old), size: curSize}
	}
	switch {
	case t.size == 0:
		if t.hash != emptyTreeHash || len(req.proof) != 0 {
			return nil, inconsistent("a checkpoint of 0 records must have the empty tree's root and no proof")
		}
	case req.old == 0:
		if len(req.proof) != 0 {
			return nil, inconsistent("no consistency proof is needed from size 0")
		}
	case req.old == t.size:
		if len(req.proof) != 0 || t.hash != cur.hash {
			return nil, inconsistent("the checkpoint of %d records has a different root than the one the witness cosigned", t.size)
		}
	default:
		if err := tlog.CheckTree(req.proof, t.size, t.hash, cur.size, cur.hash); err != nil {
			return nil, inconsistent("the tree of %d records is not an extension of the one of %d records the witness cosigned", t.size, cur.size)
		}
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	cosig := signed[len(n.Text)+1:] // note.Sign writes the text, an empty line, the signature line
	stored := append([]byte(n.Text+"\n"), sigLines(n.Sigs)...)
	stored = append(stored, cosig...)
	if err := audit.WriteFileDurably(w.dir, stateName(origin), stored); err != nil {
		return nil, fmt.Errorf("store the state of %q: %w", origin, err)
	}
	w.state[origin] = &head{size: t.size, hash: t.hash, note: stored}
	w.logger.Info("witness: cosigned", "origin", origin, "size", t.size)
	return cosig, nil
}

// sigLines formats signature lines of a note.
func sigLines(sigs []note.Signature) []byte {
	var b []byte
	for _, s := range sigs {
		b = fmt.Appendf(b, "— %s %s\n", s.Name, s.Base64)
	}
	return b
}

// serveCheckpoint answers GET /<origin hash>/checkpoint with the newest checkpoint the witness
// cosigned for that log, with the log's signatures and its cosignature (404 if none).
func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	var found []byte
	w.mu.Lock()
	if h := w.state[w.byHash[r.PathValue("origin")]]; h != nil {
		found = h.note
	}
	w.mu.Unlock()
	if found == nil {
		http.Error(rw, "the witness has cosigned no checkpoint of this log", http.StatusNotFound)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Content-Length", strconv.Itoa(len(found)))
	_, _ = rw.Write(found)
}
