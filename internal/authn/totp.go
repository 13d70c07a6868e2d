package authn

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"image/png"
	"io"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: the ones every authenticator app understands (RFC 6238 defaults).
const (
	totpPeriod = 30 * time.Second
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // one step either side, for clock drift and typing time
)

// Enrollment is a new TOTP secret for an operator to load into an authenticator app.
type Enrollment struct {
	Secret Secret // the base32 secret, for manual entry
	URI    string // the otpauth:// URI (contains the secret: show it, never log it)
}

// QRCode renders the otpauth URI as a PNG of size×size pixels.
func (e Enrollment) QRCode(size int) ([]byte, error) {
	key, err := otp.NewKeyFromURL(e.URI)
	if err != nil {
		return nil, fmt.Errorf("TOTP URI: %w", err)
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	return buf.Bytes(), nil
}

func newEnrollment(issuer, account string, rand io.Reader) (Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(totpPeriod / time.Second),
		SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, Rand: rand,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate TOTP secret: %w", err)
	}
	return Enrollment{Secret: Secret{key.Secret()}, URI: key.URL()}, nil
}

// matchTOTP returns the time step whose code equals code, within one step of now. Every
// candidate is computed and compared in constant time.
func matchTOTP(secret, code string, now time.Time) (int64, error) {
	if len(code) != totpDigits.Length() {
		return 0, fmt.Errorf("TOTP code must have %d digits", totpDigits.Length())
	}
	opts := totp.ValidateOpts{Period: uint(totpPeriod / time.Second), Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	step := now.Unix() / int64(totpPeriod/time.Second)
	found := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(totpPeriod/time.Second), 0), opts)
		if err != nil {
			return 0, fmt.Errorf("TOTP secret: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && found < 0 {
			found = s
		}
	}
	if found < 0 {
		return 0, errors.New("TOTP code does not match")
	}
	return found, nil
}
