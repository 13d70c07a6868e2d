package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/mcpguard/mcpguard/internal/audit"
)

// FetchCheckpoint asks the witness served at prefix (its monitoring prefix) for the newest
// checkpoint of the log origin it cosigned: GET <prefix>/<OriginHash(origin)>/checkpoint. It
// returns nil and no error when the witness has cosigned none (404). The answer is not checked
// here: see Cosigners.
func FetchCheckpoint(ctx context.Context, hc *http.Client, prefix, origin string) ([]byte, error) {
	url := strings.TrimSuffix(prefix, "/") + "/" + OriginHash(origin) + "/checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("ask witness %s: %w", prefix, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask witness %s: %w", prefix, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("ask witness %s: %w", prefix, err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("ask witness %s: %s: %s", url, resp.Status, clip(body))
	case len(body) > MaxBodyBytes:
		return nil, fmt.Errorf("ask witness %s: the answer exceeds %d bytes", url, MaxBodyBytes)
	}
	return body, nil
}

// Cosigners checks msg, a checkpoint that must carry a valid signature of the log (logKey), and
// returns its tree and which of witnesses cosigned it. A cosignature by one of witnesses that
// does not verify is an error (a forgery), as is a missing or bad log signature.
func Cosigners(msg []byte, logKey note.Verifier, witnesses []note.Verifier) (audit.Tree, []note.Verifier, error) {
	t, err := audit.ParseCheckpoint(msg, logKey)
	if err != nil {
		return t, nil, err
	}
	var by []note.Verifier
	for _, w := range witnesses {
		_, err := note.Open(msg, note.VerifierList(w))
		if _, none := errors.AsType[*note.UnverifiedNoteError](err); none {
			continue
		}
		if err != nil {
			return t, nil, fmt.Errorf("cosignature of witness %s: %w", w.Name(), err)
		}
		by = append(by, w)
	}
	return t, by, nil
}

// ReadWitnessedDir returns the cosigned checkpoints a Client wrote into dir (the
// witnessed-<size>-<key id> files), in name order. A missing directory holds none.
func ReadWitnessedDir(dir string) ([]audit.ExternalCheckpoint, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint directory: %w", err)
	}
	var out []audit.ExternalCheckpoint
	for _, e := range ents {
		if e.IsDir() || !strings.HasPrefix(e.Name(), "witnessed-") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read cosigned checkpoint: %w", err)
		}
		out = append(out, audit.ExternalCheckpoint{Path: p, Note: b})
	}
	return out, nil
}
