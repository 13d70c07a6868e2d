package oauthclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxTokenBytes bounds an access token: it is sent in a header with every request.
const maxTokenBytes = 16 << 10

// tokenWire is the JSON of a token endpoint's answer, success or error (RFC 6749 sections 5.1
// and 5.2, OpenID Connect Core section 3.1.3.3).
type tokenWire struct {
	AccessToken      *string        `json:"access_token"`
	TokenType        *string        `json:"token_type"`
	ExpiresIn        jsontext.Value `json:"expires_in"`
	IDToken          string         `json:"id_token"`
	Error            string         `json:"error"`
	ErrorDescription string         `json:"error_description"`
}

// TokenResponse is a token endpoint's successful answer, as [ParseTokenResponse] read it. Each
// caller takes what its grant yields: [TokenResponse.Bearer] for an access token to send, or
// [TokenResponse.IDToken] for the ID token of an OpenID Connect login.
type TokenResponse struct {
	wire tokenWire
}

// TokenError is a token endpoint's refusal: an OAuth error answer (RFC 6749 section 5.2), with
// any status, or a status other than 200 without one (Code is then empty). Code and Description
// are the server's text, to be cleaned before display.
type TokenError struct {
	Status            int
	Code, Description string
}

func (e *TokenError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("answered %d %s", e.Status, http.StatusText(e.Status))
	}
	msg := fmt.Sprintf("answered %d %s", e.Status, printable(e.Code, 64))
	if e.Description != "" {
		msg += " (" + printable(e.Description, 200) + ")"
	}
	return msg
}

// ParseTokenResponse reads a token endpoint's answer (status and body, already bounded by the
// caller): a *TokenError for a refusal, or else the response of a 200 whose body is one JSON
// object without an error member. Duplicate member names and invalid UTF-8 are refused, so no
// other reader can see a different token than the one checked. It is the one reader of token
// answers: the client credentials grant of this package and the OpenID Connect login of
// internal/authn both use it. Errors never contain a token.
func ParseTokenResponse(status int, body []byte) (*TokenResponse, error) {
	var r TokenResponse
	jsonErr := json.Unmarshal(body, &r.wire)
	if status != http.StatusOK {
		if jsonErr == nil && r.wire.Error != "" {
			return nil, &TokenError{Status: status, Code: r.wire.Error, Description: r.wire.ErrorDescription}
		}
		return nil, &TokenError{Status: status}
	}
	if jsonErr != nil {
		return nil, errors.New("answered 200 with a body that is not a JSON token response")
	}
	if r.wire.Error != "" {
		return nil, &TokenError{Status: status, Code: r.wire.Error, Description: r.wire.ErrorDescription}
	}
	return &r, nil
}

// IDToken returns the answer's id_token, "" when it has none.
func (r *TokenResponse) IDToken() string { return r.wire.IDToken }

// Bearer returns the access token and its lifetime, checked strictly: a Bearer token_type (any
// case), a non-empty access_token that a header can carry, and an expires_in that, when present,
// is a non-negative integer number of seconds (0 or absent: unknown lifetime).
func (r *TokenResponse) Bearer() (string, time.Duration, error) {
	w := r.wire
	if w.TokenType == nil || !strings.EqualFold(*w.TokenType, "Bearer") {
		got := "none"
		if w.TokenType != nil {
			got = printable(*w.TokenType, 32)
		}
		return "", 0, fmt.Errorf("token_type is %s; want Bearer", got)
	}
	if w.AccessToken == nil || *w.AccessToken == "" {
		return "", 0, errors.New("the response has no access_token")
	}
	tok := *w.AccessToken
	if len(tok) > maxTokenBytes || strings.ContainsFunc(tok, func(c rune) bool { return c <= ' ' || c > '~' }) {
		return "", 0, errors.New("the access_token is too long or holds characters a header cannot carry")
	}
	var lifetime time.Duration
	if w.ExpiresIn != nil && string(w.ExpiresIn) != "null" {
		var secs int64
		if err := json.Unmarshal(w.ExpiresIn, &secs); err != nil || secs < 0 || secs > 10*365*24*3600 {
			return "", 0, errors.New("expires_in is not a non-negative integer number of seconds")
		}
		lifetime = time.Duration(secs) * time.Second
	}
	return tok, lifetime, nil
}
