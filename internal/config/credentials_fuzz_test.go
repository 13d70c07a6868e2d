package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePrivateKey checks that no text makes the PEM key reader panic, and that a key it
// accepts can sign a client assertion with its usual algorithm.
func FuzzParsePrivateKey(f *testing.F) {
	files, err := filepath.Glob("testdata/keys/*.pem")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed keys: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := parsePrivateKey(data)
		if err != nil {
			return
		}
		if algs, err := keyAlgorithms(key); err != nil || len(algs) == 0 {
			t.Fatalf("accepted a %T key that signs with no algorithm: %v", key, err)
		}
	})
}
