package authn

import (
	"errors"
	"fmt"
)

// Reason is the internal cause of a rejected credential. It goes to the log and the audit
// record; the client only ever sees one public answer per HTTP status.
type Reason string

// Reasons a credential is rejected.
const (
	ReasonMissing         Reason = "missing_credential"      // no Authorization header
	ReasonScheme          Reason = "unsupported_scheme"      // Authorization is not Bearer
	ReasonDuplicateHeader Reason = "duplicate_authorization" // two Authorization headers (400)
	ReasonTokenInQuery    Reason = "token_in_query"          // access_token in the URL (400)
	ReasonTooLarge        Reason = "token_too_large"         // over Options.MaxTokenBytes
	ReasonMalformed       Reason = "malformed"               // not three base64url segments of strict JSON
	ReasonAlgorithm       Reason = "algorithm_not_allowed"   // alg none, HS256, or anything outside the allow-list
	ReasonForbiddenHeader Reason = "forbidden_header"        // jku, x5u, jwk, x5c or crit in the JOSE header
	ReasonType            Reason = "wrong_type"              // typ is not the required one
	ReasonUnknownKey      Reason = "unknown_key"             // no key with that kid, even after a refetch
	ReasonKeysUnavailable Reason = "keys_unavailable"        // the JWKS could not be fetched and no usable cached keys remain
	ReasonSignature       Reason = "bad_signature"           // the signature does not verify
	ReasonMissingExp      Reason = "missing_exp"             // no exp claim
	ReasonExpired         Reason = "expired"                 // exp is past (beyond the clock skew)
	ReasonNotYetValid     Reason = "not_yet_valid"           // nbf is in the future (beyond the clock skew)
	ReasonIssuedInFuture  Reason = "issued_in_future"        // iat is in the future (beyond the clock skew)
	ReasonLifetime        Reason = "lifetime_too_long"       // exp is further after iat (or, without iat, after now) than the maximum token lifetime
	ReasonIssuer          Reason = "wrong_issuer"            // iss is not the pinned issuer
	ReasonAudience        Reason = "wrong_audience"          // aud does not name this gateway's canonical URI
	ReasonClaims          Reason = "bad_claims"              // a claim has the wrong type
	ReasonScope           Reason = "insufficient_scope"      // valid, but a required scope is missing (403)
	ReasonUnknownAPIKey   Reason = "unknown_api_key"         // no API key with that id, or the secret does not match
	ReasonRevoked         Reason = "revoked"                 // the API key was revoked
	ReasonBadPassword     Reason = "bad_password"            // wrong operator name or password
	ReasonBadTOTP         Reason = "bad_totp"                // wrong, stale or replayed TOTP code
	ReasonMFARequired     Reason = "mfa_not_enrolled"        // the operator has not completed TOTP enrolment
	ReasonLocked          Reason = "locked"                  // too many failures: the account is locked for a while
	ReasonDisabled        Reason = "disabled"                // the operator account is disabled
	ReasonSessionExpired  Reason = "session_expired"         // past the absolute or the idle limit
	ReasonUnknownSession  Reason = "unknown_session"         // no such session
	ReasonStore           Reason = "store_unavailable"       // the credential store failed (fail closed)
)

// ErrRejected is matched (errors.Is) by every *Rejection.
var ErrRejected = errors.New("credential rejected")

// Rejection is a refused credential: the typed reason, and the underlying error for the log.
// Its Error text is for operators, never for the client.
type Rejection struct {
	Reason Reason
	Err    error // the underlying cause; may be nil
	// KeyID is the public id of the API key a refused credential names, when the credential
	// has the API key form (mcpg_<id>_<secret>): so that the audit record shows which key is
	// being tried. Never any part of the secret.
	KeyID string
}

func (r *Rejection) Error() string {
	if r.Err == nil {
		return "credential rejected: " + string(r.Reason)
	}
	return fmt.Sprintf("credential rejected: %s: %v", r.Reason, r.Err)
}

func (r *Rejection) Unwrap() []error {
	if r.Err == nil {
		return []error{ErrRejected}
	}
	return []error{ErrRejected, r.Err}
}

func reject(reason Reason, err error) *Rejection { return &Rejection{Reason: reason, Err: err} }

func rejectf(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason of a *Rejection in err's chain, or "" when there is none.
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}
