package integrated

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
	"github.com/ferry-iot/ferry/httpapi/arm"
	"github.com/ferry-iot/ferry/sphere"
)

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// Certificates.

func (a *api) listCertificates(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	certs, err := a.svc.ListCertificates(r.Context(), c.TenantID)
	if err != nil {
		return err
	}
	field := func(x *ferry.Certificate) func(string) (string, bool) {
		return func(f string) (string, bool) {
			switch f {
			case "name", "serialnumber":
				return x.SerialNumber, true
			case "status":
				return string(x.Status), true
			case "thumbprint":
				return x.Thumbprint, true
			case "subject":
				return x.Subject, true
			}
			return "", false
		}
	}
	return listPaged(w, r, slicePages(certs), &ferry.Certificate{}, field, func(x *ferry.Certificate) (arm.Resource[certificateProps], error) {
		return a.certificateResource(c, x), nil
	}, nil)
}

func (a *api) resolveCertificate(r *http.Request) (*ferry.Catalog, *ferry.Certificate, error) {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return nil, nil, err
	}
	serial := r.PathValue("serialNumber")
	cert, err := a.svc.GetCertificate(r.Context(), c.TenantID, serial)
	if err != nil {
		return nil, nil, notFound(err, c.ResourceID().Child("certificates", serial))
	}
	return c, cert, nil
}

func (a *api) getCertificate(w http.ResponseWriter, r *http.Request) error {
	c, cert, err := a.resolveCertificate(r)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, a.certificateResource(c, cert))
}

func (a *api) certChain(w http.ResponseWriter, r *http.Request) error {
	c, cert, err := a.resolveCertificate(r)
	if err != nil {
		return err
	}
	chain, err := a.svc.CertificateChain(r.Context(), c.TenantID, cert.SerialNumber)
	if err != nil {
		return err
	}
	var all []byte
	for _, der := range chain {
		all = append(all, der...)
	}
	return httpapi.WriteJSON(w, http.StatusOK, map[string]string{"certificateChain": base64.StdEncoding.EncodeToString(all)})
}

func (a *api) proofOfPossession(w http.ResponseWriter, r *http.Request) error {
	c, cert, err := a.resolveCertificate(r)
	if err != nil {
		return err
	}
	var body struct {
		Nonce *string `json:"proofOfPossessionNonce"`
	}
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Nonce == nil || *body.Nonce == "" {
		return arm.Required("proofOfPossessionNonce")
	}
	der, err := a.svc.ProofOfPossession(r.Context(), c.TenantID, cert.SerialNumber, *body.Nonce)
	if ferry.IsCode(err, ferry.EINVALID) {
		return arm.InvalidContent("proofOfPossessionNonce", "%s", ferry.ErrorMessage(err))
	}
	if err != nil {
		return err
	}
	props := a.certificateResource(c, cert).Properties
	b := base64.StdEncoding.EncodeToString(der)
	props.Certificate = &b
	return httpapi.WriteJSON(w, http.StatusOK, props)
}

// Images.

func (a *api) listImages(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	f := ferry.ImageFilter{CatalogID: c.TenantID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Image], error) {
		f.ListOptions = o
		return a.svc.ListImages(r.Context(), f)
	}
	return listPaged(w, r, fetch, &ferry.Image{}, imageField, func(img *ferry.Image) (arm.Resource[*imageProps], error) {
		return imageResource(r, c, img), nil
	}, nil)
}

func (a *api) resolveImage(r *http.Request) (*ferry.Catalog, *ferry.Image, error) {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return nil, nil, err
	}
	name := r.PathValue("imageName")
	id := c.ResourceID().Child("images", name)
	if !ferry.IsUUID(name) {
		return c, nil, arm.NotFound(id)
	}
	img, err := a.svc.GetImage(r.Context(), name)
	if err == nil && img.CatalogID != c.TenantID {
		err = ferry.Errorf(ferry.ENOTFOUND, "not in catalog")
	}
	if err != nil {
		return c, nil, notFound(err, id)
	}
	return c, img, nil
}

func (a *api) getImage(w http.ResponseWriter, r *http.Request) error {
	c, img, err := a.resolveImage(r)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, imageResource(r, c, img))
}

func (a *api) putImage(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	in, err := imageUpload(r, c)
	if err != nil {
		return err
	}
	// The path names the image when it is a GUID ("Use an image GUID for
	// GA versions of the API"); otherwise the body or a new GUID does.
	if name := r.PathValue("imageName"); ferry.IsUUID(name) {
		if in.ID != "" && !strings.EqualFold(in.ID, name) {
			return arm.InvalidContent("properties.imageId", "The image ID '%s' does not match the image name '%s'.", in.ID, name)
		}
		in.ID = name
	}
	img, op, err := a.svc.UploadImage(r.Context(), in)
	if err != nil {
		return err
	}
	return a.srv.WriteAsync(w, r, http.StatusCreated, op, imageResource(r, c, img))
}

func (a *api) deleteImage(w http.ResponseWriter, r *http.Request) error {
	c, img, err := a.resolveImage(r)
	if ferry.IsCode(err, ferry.ENOTFOUND) && c != nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.svc.DeleteImage(r.Context(), img.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// Products.

func (a *api) listProducts(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	f := ferry.ProductFilter{CatalogID: c.TenantID}
	fetch := func(o ferry.ListOptions) (ferry.Page[*ferry.Product], error) {
		f.ListOptions = o
		return a.svc.ListProducts(r.Context(), f)
	}
	return listPaged(w, r, fetch, &ferry.Product{}, productField, func(p *ferry.Product) (arm.Resource[productProps], error) {
		return productResource(c, p), nil
	}, nil)
}

func (a *api) getProduct(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if err != nil {
		return err
	}
	arm.SetETag(w, t.product.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, productResource(t.catalog, t.product))
}

type productBody struct {
	Properties *struct {
		Description *string `json:"description"`
	} `json:"properties"`
}

func (a *api) putProduct(w http.ResponseWriter, r *http.Request) error {
	c, err := a.resolveCatalog(r)
	if err != nil {
		return err
	}
	name := r.PathValue("productName")
	if err := arm.CheckName(name, productNamePattern); err != nil {
		return err
	}
	if sphere.IsSystemName(name) {
		return arm.InvalidName(name, productNamePattern.String())
	}
	var body productBody
	if err := arm.Decode(r, &body, false); err != nil {
		return err
	}
	desc := ""
	if body.Properties != nil && body.Properties.Description != nil {
		desc = *body.Properties.Description
	}
	ctx := r.Context()
	p, err := a.svc.GetProductByName(ctx, c.TenantID, name)
	if err == nil || ferry.IsCode(err, ferry.ENOTFOUND) {
		if cerr := arm.CheckPutConditions(r, err == nil); cerr != nil {
			return cerr
		}
	}
	switch {
	case ferry.IsCode(err, ferry.ENOTFOUND):
		p = &ferry.Product{CatalogID: c.TenantID, Name: name, Description: desc}
		if _, err := a.svc.CreateProduct(ctx, p, false); err != nil {
			return err
		}
		arm.SetETag(w, p.ETag)
		return httpapi.WriteJSON(w, http.StatusCreated, productResource(c, p))
	case err != nil:
		return err
	}
	p.Description = desc
	if err := a.svc.UpdateProduct(ctx, p, arm.IfMatch(r)); err != nil {
		return err
	}
	arm.SetETag(w, p.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, productResource(c, p))
}

func (a *api) patchProduct(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if err != nil {
		return err
	}
	var body productBody
	if err := arm.Decode(r, &body, true); err != nil {
		return err
	}
	if body.Properties != nil && body.Properties.Description != nil {
		t.product.Description = *body.Properties.Description
	}
	if err := a.svc.UpdateProduct(r.Context(), t.product, arm.IfMatch(r)); err != nil {
		return err
	}
	arm.SetETag(w, t.product.ETag)
	return httpapi.WriteJSON(w, http.StatusOK, productResource(t.catalog, t.product))
}

func (a *api) deleteProduct(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if ferry.IsCode(err, ferry.ENOTFOUND) && t.catalog != nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	op, err := a.svc.DeleteProduct(r.Context(), t.product.ID)
	if err != nil {
		return err
	}
	return a.srv.Accepted(w, r, op)
}

func (a *api) countProductDevices(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, true)
	if err != nil {
		return err
	}
	f := ferry.DeviceFilter{CatalogID: t.catalog.TenantID, Unassigned: t.unassigned}
	if t.product != nil {
		f.ProductID = t.product.ID
	}
	n, err := a.svc.CountDevices(r.Context(), f)
	if err != nil {
		return err
	}
	return httpapi.WriteJSON(w, http.StatusOK, countResponse{Value: n})
}

func (a *api) generateDefaultDeviceGroups(w http.ResponseWriter, r *http.Request) error {
	t, err := a.resolveProduct(r, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	groups, err := a.svc.GenerateDefaultDeviceGroups(ctx, t.product.ID)
	if err != nil {
		return err
	}
	out := make([]arm.Resource[deviceGroupProps], 0, len(groups))
	for _, g := range groups {
		res, err := a.groupResource(ctx, t.catalog, t.product, g)
		if err != nil {
			return err
		}
		out = append(out, res)
	}
	return httpapi.WriteJSON(w, http.StatusOK, arm.List[arm.Resource[deviceGroupProps]]{Value: out})
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
