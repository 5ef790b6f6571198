// Package sas signs, parses and verifies the shared access signature (SAS)
// tokens that Azure IoT devices and service clients send to IoT Hub and the
// Device Provisioning Service, and derives device keys from enrollment-group
// keys.
//
// The rules follow the Azure SDKs as they behave on the wire, not only as the
// documentation describes them: tokens are parsed in any field order, and the
// signature is checked over the sr value exactly as it was transmitted,
// because the Node SDK signs an unencoded DPS resource while the Python SDK
// and every hub client sign the URL-encoded one.
package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// Prefix starts every token.
const Prefix = "SharedAccessSignature "

// Field names of a token.
const (
	fieldResource  = "sr"
	fieldSignature = "sig"
	fieldExpiry    = "se"
	fieldKeyName   = "skn"
)

// maxTokenLen bounds what Parse accepts; real tokens are a few hundred bytes.
const maxTokenLen = 4096

// Token is a parsed shared access signature.
type Token struct {
	// SignedResource is the sr field exactly as sent, still URL-encoded if
	// the client encoded it; the signature covers this literal value.
	SignedResource string
	// Signature is the sig field, URL-decoded: the base64 HMAC-SHA256.
	Signature string
	// Expiry is the se field, in seconds since the epoch.
	Expiry time.Time
	// KeyName is the skn field: the shared-access policy that signed the
	// token, or "" for a device key.
	KeyName string

	// expiry is the se field as sent, so that the string to sign is the one
	// the client signed even when it wrote leading zeros.
	expiry string
}

// String renders the token in the field order of the Azure SDKs
// (sr, sig, se, skn), with the sr value as it was signed.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString("sr=")
	b.WriteString(t.SignedResource)
	b.WriteString("&sig=")
	b.WriteString(Encode(t.Signature))
	b.WriteString("&se=")
	b.WriteString(t.expiryString())
	if t.KeyName != "" {
		b.WriteString("&skn=")
		b.WriteString(Encode(t.KeyName))
	}
	return b.String()
}

func (t Token) expiryString() string {
	if t.expiry != "" {
		return t.expiry
	}
	return strconv.FormatInt(t.Expiry.Unix(), 10)
}

// Sign returns a token for resourceURI signed with the base64 key, valid
// until expiry. keyName is the policy name ("" for device keys, "registration"
// for DPS devices). The output matches the Python SDK byte for byte:
// `SharedAccessSignature sr={enc uri}&sig={enc b64 hmac}&se={unix}[&skn={name}]`,
// where enc escapes every byte but A-Z a-z 0-9 - _ . ~ with upper-case hex
// (Python's quote(s, safe="") and Node's encodeUriComponentStrict agree).
// The HMAC covers the encoded URI, a newline and the expiry.
// Returns EINVALID for an empty resource, an expiry before 1970 or a key
// that is not base64.
func Sign(resourceURI, keyBase64, keyName string, expiry time.Time) (string, error) {
	if resourceURI == "" {
		return "", ferry.Errorf(ferry.EINVALID, "The resource URI of a shared access signature is required.")
	}
	if expiry.Unix() < 0 {
		return "", ferry.Errorf(ferry.EINVALID, "The expiry of a shared access signature must be after 1970.")
	}
	key, err := decodeKey(keyBase64)
	if err != nil {
		return "", err
	}
	t := Token{
		SignedResource: Encode(resourceURI),
		Expiry:         time.Unix(expiry.Unix(), 0),
		KeyName:        keyName,
	}
	t.Signature = base64.StdEncoding.EncodeToString(mac(key, t.SignedResource, t.expiryString()))
	return t.String(), nil
}

// Parse reads a token such as a device sends as its MQTT password. Fields may
// come in any order; sr, sig and se are required, unknown fields are ignored.
// Returns EINVALID for anything that is not a well-formed token.
func Parse(token string) (Token, error) {
	var t Token
	bad := func(why string) (Token, error) {
		return Token{}, ferry.Errorf(ferry.EINVALID, "The shared access signature is malformed: %s.", why)
	}
	if len(token) > maxTokenLen {
		return bad("it is too long")
	}
	rest, ok := cutPrefixFold(token, Prefix)
	if !ok {
		return bad("it must start with 'SharedAccessSignature '")
	}
	rest = strings.TrimLeft(rest, " ")
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(rest, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return bad("every field must be name=value")
		}
		k = strings.ToLower(k)
		switch k {
		case fieldResource, fieldSignature, fieldExpiry, fieldKeyName:
		default:
			continue
		}
		if seen[k] {
			return bad("the field " + k + " appears twice")
		}
		seen[k] = true
		switch k {
		case fieldResource:
			if v == "" {
				return bad("sr is empty")
			}
			if _, err := url.PathUnescape(v); err != nil {
				return bad("sr is not URL-encoded correctly")
			}
			t.SignedResource = v
		case fieldSignature:
			s, err := url.PathUnescape(v)
			if err != nil {
				return bad("sig is not URL-encoded correctly")
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(raw) != sha256.Size {
				return bad("sig is not a base64 HMAC-SHA256")
			}
			t.Signature = s
		case fieldExpiry:
			if v == "" || len(v) > 19 || strings.Trim(v, "0123456789") != "" {
				return bad("se must be seconds since the epoch")
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad("se must be seconds since the epoch")
			}
			t.Expiry = time.Unix(n, 0)
			t.expiry = v
		case fieldKeyName:
			name, err := url.PathUnescape(v)
			if err != nil || name == "" {
				return bad("skn is not a policy name")
			}
			t.KeyName = name
		}
	}
	for _, k := range []string{fieldResource, fieldSignature, fieldExpiry} {
		if !seen[k] {
			return bad("the field " + k + " is missing")
		}
	}
	return t, nil
}

// Verify checks that tok was signed with the base64 key and has not expired
// at now. The HMAC is recomputed over the sr value exactly as sent, a newline
// and se as sent; for clients that re-encode the resource, the upper- and
// lower-case hex encodings of the decoded sr are tried as well. The
// comparison is constant-time. Returns EUNAUTHORIZED for a wrong signature or
// an expired token (with a message that does not say which), EINVALID for a
// key that is not base64.
func Verify(tok Token, keyBase64 string, now time.Time) error {
	key, err := decodeKey(keyBase64)
	if err != nil {
		return err
	}
	got, err := base64.StdEncoding.DecodeString(tok.Signature)
	if err != nil || len(got) != sha256.Size || tok.SignedResource == "" {
		return denied()
	}
	se := tok.expiryString()
	ok := hmac.Equal(mac(key, tok.SignedResource, se), got)
	if !ok {
		if dec, err := url.PathUnescape(tok.SignedResource); err == nil {
			for _, alt := range []string{Encode(dec), encodeLower(dec)} {
				if alt != tok.SignedResource && hmac.Equal(mac(key, alt, se), got) {
					ok = true
					break
				}
			}
		}
	}
	if !ok || !now.Before(tok.Expiry) {
		return denied()
	}
	return nil
}

func denied() error {
	return ferry.Errorf(ferry.EUNAUTHORIZED, "The shared access signature is not valid.")
}

// ResourceCovers reports whether a token's sr grants access to want, a plain
// (unencoded) resource such as "{host}/devices/{id}" or
// "{idScope}/registrations/{id}". sr is URL-decoded; both sides are compared
// case-insensitively and without trailing slashes, and sr must be a prefix of
// want by whole segments: "hub/devices" covers "hub/devices/d1" but
// "hub/devices/d1" does not cover "hub/devices/d10".
func ResourceCovers(sr, want string) bool {
	dec, err := url.PathUnescape(sr)
	if err != nil {
		return false
	}
	dec = strings.TrimRight(dec, "/")
	want = strings.TrimRight(want, "/")
	if dec == "" || want == "" || len(dec) > len(want) {
		return false
	}
	if !strings.EqualFold(want[:len(dec)], dec) {
		return false
	}
	return len(dec) == len(want) || want[len(dec)] == '/'
}

// DeriveDeviceKey returns the symmetric key of a device in a DPS enrollment
// group: base64(HMAC-SHA256(base64decode(groupKey), registrationID)).
// Returns EINVALID for an empty registration ID or a group key that is not
// base64.
func DeriveDeviceKey(groupKeyBase64, registrationID string) (string, error) {
	if registrationID == "" {
		return "", ferry.Errorf(ferry.EINVALID, "A registration ID is required to derive a device key.")
	}
	key, err := decodeKey(groupKeyBase64)
	if err != nil {
		return "", err
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(registrationID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// Encode URL-encodes s the way the Azure SDKs encode a SAS resource and
// signature: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX in upper-case
// hex.
func Encode(s string) string { return encode(s, upperHex) }

const (
	upperHex = "0123456789ABCDEF"
	lowerHex = "0123456789abcdef"
)

func encodeLower(s string) string { return encode(s, lowerHex) }

func encode(s, hex string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func mac(key []byte, resource, expiry string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(resource))
	h.Write([]byte{'\n'})
	h.Write([]byte(expiry))
	return h.Sum(nil)
}

func decodeKey(k string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(key) == 0 {
		return nil, ferry.Errorf(ferry.EINVALID, "The shared access key is not valid base64.")
	}
	return key, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
