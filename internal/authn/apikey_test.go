package authn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	store := NewMemoryStore()
	keys := NewAPIKeys(store, &APIKeysOptions{Now: clk.Now})
	secret, rec, err := keys.Create(ctx, "ci-agent", []string{"deploy", "read"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	text := secret.Reveal()
	if !strings.HasPrefix(text, "mcpg_"+rec.ID+"_") || len(text) != apiKeyLen {
		t.Fatalf("key %q does not have the form mcpg_<id>_<secret>", text)
	}
	stored, _ := store.APIKey(ctx, rec.ID)
	if strings.Contains(fmt.Sprintf("%+v", stored), text[len(text)-apiKeySecLen:]) {
		t.Fatal("the store holds the secret")
	}

	p, err := keys.Verify(ctx, text)
	if err != nil {
		t.Fatal(err)
	}
	want := &Principal{Method: MethodAPIKey, Subject: "ci-agent", KeyID: rec.ID, Roles: []string{"deploy", "read"}, Expires: clk.Now().Add(24 * time.Hour)}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}

	flip := []byte(text)
	i := len(flip) - apiKeySecLen // the secret's first character carries six full bits
	if flip[i] == 'A' {
		flip[i] = 'B'
	} else {
		flip[i] = 'A'
	}
	// A refusal names the key's public id when the credential has the key form, so the audit
	// record shows which key is being tried; a malformed credential names none.
	tests := []struct {
		name  string
		token string
		at    time.Duration
		want  Reason
		keyID string
	}{
		{"wrong secret", string(flip), 0, ReasonUnknownAPIKey, rec.ID},
		{"unknown id", "mcpg_ffffffffffffffff_" + text[len(text)-apiKeySecLen:], 0, ReasonUnknownAPIKey, "ffffffffffffffff"},
		{"truncated", text[:len(text)-1], 0, ReasonMalformed, ""},
		{"upper-case id", "mcpg_" + strings.ToUpper(rec.ID) + text[len("mcpg_")+apiKeyIDLen:], 0, ReasonMalformed, ""},
		{"expired", text, 24 * time.Hour, ReasonExpired, rec.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := NewAPIKeys(store, &APIKeysOptions{Now: func() time.Time { return clk.Now().Add(tt.at) }})
			_, err := keys.Verify(ctx, tt.token)
			if ReasonOf(err) != tt.want {
				t.Errorf("reason %q (%v), want %q", ReasonOf(err), err, tt.want)
			}
			if got := keyIDOf(err); got != tt.keyID {
				t.Errorf("rejection names key %q, want %q", got, tt.keyID)
			}
		})
	}

	if err := keys.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, text); ReasonOf(err) != ReasonRevoked || keyIDOf(err) != rec.ID {
		t.Errorf("after revocation: %v naming key %q, want %s naming %q", err, keyIDOf(err), ReasonRevoked, rec.ID)
	}
	if err := keys.Revoke(ctx, "0000000000000000"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
	list, err := keys.List(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() {
		t.Errorf("List = %+v, %v; want the one revoked key", list, err)
	}
	if _, _, err := keys.Create(ctx, " ", nil, 0); err == nil {
		t.Error("a key without a principal was created")
	}
}

// keyIDOf is the key id a *Rejection in err's chain names.
func keyIDOf(err error) string {
	var r *Rejection
	if errors.As(err, &r) {
		return r.KeyID
	}
	return ""
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	s := Secret{"mcpg_0123456789abcdef_topsecret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("created", "key", s)
	out := fmt.Sprintf("%v %s %+v", s, s, s) + buf.String()
	if strings.Contains(out, "topsecret") {
		t.Errorf("secret printed: %s", out)
	}
}
