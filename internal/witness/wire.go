package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Bounds of an add-checkpoint request.
const (
	// MaxBodyBytes bounds a request body and a response the client reads.
	MaxBodyBytes = 64 << 10
	// MaxProofLines is the longest consistency proof C2SP tlog-witness allows (a tree of up to
	// 2^63 records needs at most 63 hashes).
	MaxProofLines = 63
)

// sizeContentType is the content type of a 409 answer, which carries the witness's size.
const sizeContentType = "text/x.tlog.size"

// addRequest is the body of POST /add-checkpoint (C2SP tlog-witness): "old <size>\n", one
// base64 hash a line of consistency proof, an empty line, then the signed checkpoint.
type addRequest struct {
	old        int64
	proof      tlog.TreeProof
	checkpoint []byte
}

// parseAddRequest parses an add-checkpoint body strictly: a size in canonical decimal, hashes
// in canonical base64 of exactly 32 bytes, at most MaxProofLines of them, every line ending in
// a newline, and a non-empty checkpoint (verified later, as a signed note).
func parseAddRequest(body []byte) (*addRequest, error) {
	line, rest, ok := bytes.Cut(body, []byte{'\n'})
	if !ok {
		return nil, errors.New(`want an "old <size>" line`)
	}
	digits, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return nil, errors.New(`the first line must be "old <size>"`)
	}
	old, err := parseSize(digits)
	if err != nil {
		return nil, fmt.Errorf("old size: %w", err)
	}
	req := &addRequest{old: old}
	for {
		line, rest, ok = bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return nil, errors.New("want an empty line between the consistency proof and the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(req.proof) == MaxProofLines {
			return nil, fmt.Errorf("the consistency proof has more than %d lines", MaxProofLines)
		}
		h, err := parseHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("consistency proof line %d: %w", len(req.proof)+1, err)
		}
		req.proof = append(req.proof, h)
	}
	if len(rest) == 0 {
		return nil, errors.New("no checkpoint after the empty line")
	}
	req.checkpoint = rest
	return req, nil
}

// formatAddRequest is the body parseAddRequest reads.
func formatAddRequest(old int64, proof tlog.TreeProof, checkpoint []byte) []byte {
	b := fmt.Appendf(nil, "old %d\n", old)
	for _, h := range proof {
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, checkpoint...)
}

// parseSize reads a tree size: ASCII decimal without leading zeroes.
func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a tree size", s)
	}
	return n, nil
}

// parseHash reads a hash in canonical base64.
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%q is not a base64 hash of %d bytes", s, tlog.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// tree is what a checkpoint's note text says (C2SP tlog-checkpoint).
type tree struct {
	origin string
	size   int64
	hash   tlog.Hash
}

// parseTree reads a checkpoint's note text: origin, size and base64 root hash lines, then
// optional extension lines (cosigned with the rest, but not interpreted).
func parseTree(text string) (tree, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return tree{}, errors.New("the checkpoint must hold origin, size and root hash lines")
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return tree{}, fmt.Errorf("checkpoint size: %w", err)
	}
	h, err := parseHash(lines[2])
	if err != nil {
		return tree{}, fmt.Errorf("checkpoint root hash: %w", err)
	}
	if ext := lines[3]; ext != "" {
		for _, l := range strings.Split(strings.TrimSuffix(ext, "\n"), "\n") {
			if l == "" {
				return tree{}, errors.New("the checkpoint has an empty extension line")
			}
		}
	}
	return tree{origin: lines[0], size: size, hash: h}, nil
}

// firstLine returns a checkpoint's first line (its origin, before any verification).
func firstLine(checkpoint []byte) string {
	line, _, _ := bytes.Cut(checkpoint, []byte{'\n'})
	return string(line)
}

// OriginHash names a log in the witness's monitoring URL and state: the lowercase hex SHA-256
// of its origin line.
func OriginHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

// emptyTreeHash is the RFC 6962 root of the empty tree: SHA-256 of the empty string.
var emptyTreeHash = tlog.Hash(sha256.Sum256(nil))
