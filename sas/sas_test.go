package sas_test

import (
	"testing"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/sas"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Vectors computed independently with openssl; the group-key vector and the
// two DPS signatures are also in iot-protocols.md §2.3 (reproduced with the
// Node SDK there):
//
//	groupKey=8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==
//	printf %s "$regID" | openssl dgst -sha256 -mac HMAC \
//	    -macopt hexkey:$(printf %s "$groupKey" | base64 -d | xxd -p -c 256) -binary | base64
//	  -> Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=  (deviceKey)
//	printf '%s\n%s' "$sr" 1700000000 | openssl dgst -sha256 -mac HMAC \
//	    -macopt hexkey:$(printf %s "$deviceKey" | base64 -d | xxd -p -c 256) -binary | base64
//	  sr=0ne00000000/registrations/sn-007-...      -> kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4=
//	sr=0ne00000000%2Fregistrations%2Fsn-007-...  -> UcaBdA4L3Se7NlFQZcBFRndkqyymINWtRUmVT5QYWng=
//	sr=myhub.azure-devices.net%2Fdevices%2Fdev-001, se=1700003600
//	                                             -> oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU=
const (
	groupKey  = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	regID     = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	deviceKey = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
	dpsURI    = "0ne00000000/registrations/" + regID

	nodeDPSToken   = "SharedAccessSignature sr=0ne00000000/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4%3D&skn=registration&se=1700000000"
	pythonDPSToken = "SharedAccessSignature sr=0ne00000000%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=UcaBdA4L3Se7NlFQZcBFRndkqyymINWtRUmVT5QYWng%3D&se=1700000000&skn=registration"
	hubToken       = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-001&sig=oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU%3D&se=1700003600"
)

func TestDeriveDeviceKey(t *testing.T) {
	got, err := sas.DeriveDeviceKey(groupKey, regID)
	if err != nil {
		t.Fatal(err)
	}
	if got != deviceKey {
		t.Fatalf("DeriveDeviceKey = %q, want %q", got, deviceKey)
	}
	t.Run("ErrBadGroupKey", func(t *testing.T) {
		if _, err := sas.DeriveDeviceKey("not base64!", regID); !ferry.IsCode(err, ferry.EINVALID) {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("ErrNoRegistrationID", func(t *testing.T) {
		if _, err := sas.DeriveDeviceKey(groupKey, ""); !ferry.IsCode(err, ferry.EINVALID) {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
}

func TestSign(t *testing.T) {
	for _, tc := range []struct {
		name     string
		uri, skn string
		expiry   int64
		want     string
	}{
		{"DPSRegistration", dpsURI, "registration", 1700000000, pythonDPSToken},
		{"HubDevice", "myhub.azure-devices.net/devices/dev-001", "", 1700003600, hubToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sas.Sign(tc.uri, deviceKey, tc.skn, time.Unix(tc.expiry, 0))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Sign =\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
	t.Run("ErrEmptyResource", func(t *testing.T) {
		if _, err := sas.Sign("", deviceKey, "", time.Unix(1, 0)); !ferry.IsCode(err, ferry.EINVALID) {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("ErrExpiryBeforeEpoch", func(t *testing.T) {
		if _, err := sas.Sign(dpsURI, deviceKey, "", time.Unix(-1, 0)); !ferry.IsCode(err, ferry.EINVALID) {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("ErrBadKey", func(t *testing.T) {
		if _, err := sas.Sign(dpsURI, "%%%", "", time.Unix(1, 0)); !ferry.IsCode(err, ferry.EINVALID) {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
}

func TestEncode(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:18883/devices/dev-001": "localhost%3A18883%2Fdevices%2Fdev-001",
		"a b+c=d@e$f!g'h(i)j*k~l_m.n-o":   "a%20b%2Bc%3Dd%40e%24f%21g%27h%28i%29j%2Ak~l_m.n-o",
		"ümlaut":                          "%C3%BCmlaut",
		"plain":                           "plain",
	} {
		if got := sas.Encode(in); got != want {
			t.Errorf("Encode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
		want  sas.Token
	}{
		{"NodeDPS", nodeDPSToken, sas.Token{
			SignedResource: dpsURI,
			Signature:      "kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4=",
			Expiry:         time.Unix(1700000000, 0),
			KeyName:        "registration",
		}},
		{"PythonDPS", pythonDPSToken, sas.Token{
			SignedResource: "0ne00000000%2Fregistrations%2F" + regID,
			Signature:      "UcaBdA4L3Se7NlFQZcBFRndkqyymINWtRUmVT5QYWng=",
			Expiry:         time.Unix(1700000000, 0),
			KeyName:        "registration",
		}},
		{"DocsFieldOrder", "SharedAccessSignature sig=oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU%3D&se=1700003600&sr=myhub.azure-devices.net%2Fdevices%2Fdev-001", sas.Token{
			SignedResource: "myhub.azure-devices.net%2Fdevices%2Fdev-001",
			Signature:      "oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU=",
			Expiry:         time.Unix(1700003600, 0),
		}},
		{"UnencodedSignature", "SharedAccessSignature sr=h/devices/d&sig=oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU=&se=5", sas.Token{
			SignedResource: "h/devices/d",
			Signature:      "oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU=",
			Expiry:         time.Unix(5, 0),
		}},
		{"UnknownFieldIgnored", "SharedAccessSignature sr=h&sig=oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU%3D&se=5&x=y", sas.Token{
			SignedResource: "h",
			Signature:      "oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU=",
			Expiry:         time.Unix(5, 0),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sas.Parse(tc.token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreUnexported(sas.Token{})); diff != "" {
				t.Fatalf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// onlyExpiryText reports whether a and b are equal but for the unexported
// as-sent expiry text.
func onlyExpiryText(a, b sas.Token) bool {
	return a.SignedResource == b.SignedResource && a.Signature == b.Signature &&
		a.Expiry.Equal(b.Expiry) && a.KeyName == b.KeyName
}

func TestParseErrors(t *testing.T) {
	const sig = "oshJc0OWFwIGdkXtXUtMMMC7LYqydUM4oY7qCpuptnU%3D"
	for _, tc := range []struct{ name, token string }{
		{"Empty", ""},
		{"NoPrefix", "sr=a&sig=" + sig + "&se=1"},
		{"PrefixOnly", "SharedAccessSignature "},
		{"MissingSr", "SharedAccessSignature sig=" + sig + "&se=1"},
		{"MissingSig", "SharedAccessSignature sr=a&se=1"},
		{"MissingSe", "SharedAccessSignature sr=a&sig=" + sig},
		{"EmptySr", "SharedAccessSignature sr=&sig=" + sig + "&se=1"},
		{"DuplicateSr", "SharedAccessSignature sr=a&sr=b&sig=" + sig + "&se=1"},
		{"NegativeSe", "SharedAccessSignature sr=a&sig=" + sig + "&se=-1"},
		{"FractionalSe", "SharedAccessSignature sr=a&sig=" + sig + "&se=1.5"},
		{"HugeSe", "SharedAccessSignature sr=a&sig=" + sig + "&se=99999999999999999999"},
		{"SigNotBase64", "SharedAccessSignature sr=a&sig=!!!&se=1"},
		{"SigWrongLength", "SharedAccessSignature sr=a&sig=AAAA&se=1"},
		{"BadEscapeInSr", "SharedAccessSignature sr=%zz&sig=" + sig + "&se=1"},
		{"FieldWithoutValue", "SharedAccessSignature sr&sig=" + sig + "&se=1"},
		{"EmptySkn", "SharedAccessSignature sr=a&sig=" + sig + "&se=1&skn="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sas.Parse(tc.token); !ferry.IsCode(err, ferry.EINVALID) {
				t.Fatalf("Parse(%q) err = %v, want EINVALID", tc.token, err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	before := time.Unix(1699999999, 0)
	signedLower := "SharedAccessSignature sr=localhost%3a18883%2fdevices%2fdev-001&sig=" // completed below
	tok, err := sas.Sign("localhost:18883/devices/dev-001", deviceKey, "", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	upper, err := sas.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	// A client that signs the upper-case encoding but sends lower-case hex.
	lower, err := sas.Parse(signedLower + sas.Encode(upper.Signature) + "&se=1700000000")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token string
		tok   *sas.Token
		key   string
		now   time.Time
		code  string
	}{
		{"NodeDPSUnencodedSr", nodeDPSToken, nil, deviceKey, before, ""},
		{"PythonDPSEncodedSr", pythonDPSToken, nil, deviceKey, before, ""},
		{"Hub", hubToken, nil, deviceKey, before, ""},
		{"ReencodedLowerHex", "", &lower, deviceKey, before, ""},
		{"ErrExpiredAtSe", nodeDPSToken, nil, deviceKey, time.Unix(1700000000, 0), ferry.EUNAUTHORIZED},
		{"ErrExpired", nodeDPSToken, nil, deviceKey, time.Unix(1800000000, 0), ferry.EUNAUTHORIZED},
		{"ErrWrongKey", nodeDPSToken, nil, groupKey, before, ferry.EUNAUTHORIZED},
		{"ErrTamperedResource", "SharedAccessSignature sr=0ne00000000/registrations/other&sig=kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4%3D&skn=registration&se=1700000000", nil, deviceKey, before, ferry.EUNAUTHORIZED},
		{"ErrTamperedExpiry", "SharedAccessSignature sr=0ne00000000/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4%3D&skn=registration&se=1700000001", nil, deviceKey, before, ferry.EUNAUTHORIZED},
		{"ErrLeadingZeroExpiry", "SharedAccessSignature sr=0ne00000000/registrations/sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=kqpeQhO0jmnInQ8yMVJhA0agrZRghf9FF1XsJORNZr4%3D&skn=registration&se=01700000000", nil, deviceKey, before, ferry.EUNAUTHORIZED},
		{"ErrBadKey", nodeDPSToken, nil, "***", before, ferry.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.tok
			if tok == nil {
				p, err := sas.Parse(tc.token)
				if err != nil {
					t.Fatal(err)
				}
				tok = &p
			}
			err := sas.Verify(*tok, tc.key, tc.now)
			if got := ferry.ErrorCode(err); got != tc.code {
				t.Fatalf("Verify err = %v, want code %q", err, tc.code)
			}
		})
	}
	t.Run("ErrZeroToken", func(t *testing.T) {
		if err := sas.Verify(sas.Token{}, deviceKey, before); !ferry.IsCode(err, ferry.EUNAUTHORIZED) {
			t.Fatalf("err = %v, want EUNAUTHORIZED", err)
		}
	})
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, uri := range []string{
		"myhub.azure-devices.net/devices/dev:1.a+b%c=d@e$f",
		"0ne0000TEST/registrations/Dev_01",
		"localhost:18883/devices/ümlaut",
	} {
		t.Run(uri, func(t *testing.T) {
			s, err := sas.Sign(uri, deviceKey, "device", time.Unix(2000000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := sas.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := sas.Verify(tok, deviceKey, time.Unix(1999999999, 0)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !sas.ResourceCovers(tok.SignedResource, uri) {
				t.Fatalf("ResourceCovers(%q, %q) = false", tok.SignedResource, uri)
			}
			if tok.KeyName != "device" || tok.String() != s {
				t.Fatalf("round trip: %q != %q", tok.String(), s)
			}
		})
	}
}

func TestResourceCovers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sr, want string
		covers   bool
	}{
		{"ExactDevice", "myhub.azure-devices.net/devices/d1", "myhub.azure-devices.net/devices/d1", true},
		{"EncodedDevice", "myhub.azure-devices.net%2Fdevices%2Fd1", "myhub.azure-devices.net/devices/d1", true},
		{"LowerHexEncoded", "localhost%3a18883%2fdevices%2fd1", "localhost:18883/devices/d1", true},
		{"HostCaseInsensitive", "MyHub.Azure-Devices.NET/devices/d1", "myhub.azure-devices.net/devices/d1", true},
		{"TrailingSlash", "myhub.azure-devices.net/devices/d1/", "myhub.azure-devices.net/devices/d1", true},
		{"WantTrailingSlash", "myhub.azure-devices.net/devices/d1", "myhub.azure-devices.net/devices/d1/", true},
		{"HubCoversDevice", "myhub.azure-devices.net", "myhub.azure-devices.net/devices/d1", true},
		{"GatewayDevices", "myhub.azure-devices.net/devices", "myhub.azure-devices.net/devices/d1", true},
		{"DeviceCoversModule", "h/devices/d1", "h/devices/d1/modules/m1", true},
		{"DPSRegistration", "0ne00000000%2Fregistrations%2Fsn-1", "0ne00000000/registrations/sn-1", true},
		{"DPSScopeCase", "0NE00000000/registrations/sn-1", "0ne00000000/registrations/sn-1", true},
		{"ErrNotWholeSegment", "myhub.azure-devices.net/devices/d1", "myhub.azure-devices.net/devices/d10", false},
		{"ErrHostPrefix", "myhub", "myhub2.azure-devices.net/devices/d1", false},
		{"ErrOtherDevice", "h/devices/d2", "h/devices/d1", false},
		{"ErrNarrowerThanWant", "h/devices/d1", "h/devices", false},
		{"ErrPortMatters", "localhost/devices/d1", "localhost:18883/devices/d1", false},
		{"ErrEmptySr", "", "h/devices/d1", false},
		{"ErrSlashSr", "/", "h/devices/d1", false},
		{"ErrBadEscape", "h%2/devices/d1", "h/devices/d1", false},
		{"ErrEmptyWant", "h", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sas.ResourceCovers(tc.sr, tc.want); got != tc.covers {
				t.Fatalf("ResourceCovers(%q, %q) = %v, want %v", tc.sr, tc.want, got, tc.covers)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{nodeDPSToken, pythonDPSToken, hubToken} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := sas.Parse(s)
		if err != nil {
			if !ferry.IsCode(err, ferry.EINVALID) {
				t.Fatalf("Parse(%q) err = %v, want EINVALID", s, err)
			}
			return
		}
		again, err := sas.Parse(tok.String())
		if err != nil {
			t.Fatalf("reparse of %q: %v", tok.String(), err)
		}
		if again.String() != tok.String() || !onlyExpiryText(tok, again) {
			t.Fatalf("round trip changed the token:\n %#v\n %#v", tok, again)
		}
		_ = sas.Verify(tok, deviceKey, time.Unix(0, 0))
		_ = sas.ResourceCovers(tok.SignedResource, "h/devices/d")
	})
}

func BenchmarkVerify(b *testing.B) {
	tok, err := sas.Parse(hubToken)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1699990000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := sas.Verify(tok, deviceKey, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseVerify(b *testing.B) {
	now := time.Unix(1699990000, 0)
	b.ReportAllocs()
	for b.Loop() {
		tok, err := sas.Parse(nodeDPSToken)
		if err != nil {
			b.Fatal(err)
		}
		if err := sas.Verify(tok, deviceKey, now); err != nil {
			b.Fatal(err)
		}
	}
}
