package legacy

import (
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// Certificate calls answer with base64 text as a JSON string: the
// certificate in DER (.cer) or a certs-only PKCS #7 (.p7b).

func (a *api) listCertificates(w http.ResponseWriter, r *http.Request) error {
	cs, err := a.svc.ListCertificates(r.Context(), tenant(r).TenantID)
	if err != nil {
		return err
	}
	out := make([]CertificateStatus, 0, len(cs))
	for _, c := range cs {
		s := CertificateStatus{IsActive: c.Status == ferry.CertificateActive, IsRevoked: c.Status == ferry.CertificateRevoked, Thumbprint: c.Thumbprint}
		if c.Status != ferry.CertificateExpired {
			b := base64.StdEncoding.EncodeToString(c.DER)
			s.Certificate = &b
		}
		out = append(out, s)
	}
	return httpapi.WriteJSON(w, http.StatusOK, out)
}

// certificate returns the certificate ?thumbprint= names, or the active
// one. An expired certificate's body is not served (sphere-surfaces.md
// §6.11).
func (a *api) certificate(r *http.Request) (*ferry.Certificate, error) {
	ctx := r.Context()
	tid := tenant(r).TenantID
	var c *ferry.Certificate
	if tp := r.URL.Query().Get("thumbprint"); tp != "" {
		cs, err := a.svc.ListCertificates(ctx, tid)
		if err != nil {
			return nil, err
		}
		for _, x := range cs {
			if strings.EqualFold(x.Thumbprint, tp) {
				c = x
			}
		}
		if c == nil {
			return nil, notFound("certificate")
		}
	} else {
		var err error
		if c, err = a.svc.GetCertificate(ctx, tid, ferry.DefaultName); err != nil {
			return nil, err
		}
	}
	if c.Status == ferry.CertificateExpired {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The certificate has expired; only its metadata is kept.")
	}
	return c, nil
}

func (a *api) getCertificate(w http.ResponseWriter, r *http.Request) error {
	c, err := a.certificate(r)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, base64.StdEncoding.EncodeToString(c.DER))
}

func (a *api) getCertificateChain(w http.ResponseWriter, r *http.Request) error {
	c, err := a.certificate(r)
	if err != nil {
		return err
	}
	chain, err := a.svc.CertificateChain(r.Context(), c.CatalogID, c.SerialNumber)
	if err != nil {
		return err
	}
	p7, err := PKCS7(chain)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, base64.StdEncoding.EncodeToString(p7))
}

// listCertificatesPKCS7 serves the deprecated /certs and /certchains: every
// certificate of the tenant that has not expired, in one PKCS #7. A
// catalog CA is a root, so the two are the same.
func (a *api) listCertificatesPKCS7(w http.ResponseWriter, r *http.Request) error {
	cs, err := a.svc.ListCertificates(r.Context(), tenant(r).TenantID)
	if err != nil {
		return err
	}
	var ders [][]byte
	for _, c := range cs {
		if c.Status != ferry.CertificateExpired {
			ders = append(ders, c.DER)
		}
	}
	p7, err := PKCS7(ders)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, base64.StdEncoding.EncodeToString(p7))
}

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      struct{ ContentType asn1.ObjectIdentifier }
	Certificates     asn1.RawValue
	SignerInfos      asn1.RawValue
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

// PKCS7 encodes DER certificates as a degenerate ("certs-only") PKCS #7
// SignedData, the .p7b form (RFC 2315 §9.1).
func PKCS7(certs [][]byte) ([]byte, error) {
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}}
	var all []byte
	for _, c := range certs {
		all = append(all, c...)
	}
	sd := signedData{Version: 1, DigestAlgorithms: emptySet, SignerInfos: emptySet,
		Certificates: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: all}}
	sd.ContentInfo.ContentType = oidData
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, ferry.WrapError(ferry.EINTERNAL, "An internal error has occurred.", err)
	}
	out, err := asn1.Marshal(contentInfo{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		return nil, ferry.WrapError(ferry.EINTERNAL, "An internal error has occurred.", err)
	}
	return out, nil
}

// ParsePKCS7 returns the DER certificates of a certs-only PKCS #7, for
// clients and tests.
func ParsePKCS7(der []byte) ([][]byte, error) {
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil || !ci.ContentType.Equal(oidSignedData) {
		return nil, ferry.Errorf(ferry.EINVALID, "The data is not a PKCS #7 SignedData.")
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, ferry.Errorf(ferry.EINVALID, "The PKCS #7 SignedData is malformed.")
	}
	var out [][]byte
	rest := sd.Certificates.Bytes
	for len(rest) > 0 {
		var raw asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &raw); err != nil {
			return nil, ferry.Errorf(ferry.EINVALID, "The PKCS #7 certificates are malformed.")
		}
		out = append(out, raw.FullBytes)
	}
	return out, nil
}
