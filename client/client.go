// Package client is a Go client of Ferry's HTTP APIs: it signs in at the
// token endpoint, keeps the token in the user's config directory, and sends
// authenticated requests. The CLI and end-to-end tests use it.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client sends authenticated requests to one Ferry server.
type Client struct {
	BaseURL    string // e.g. https://localhost:8443
	HTTPClient *http.Client
	Token      string
	UserAgent  string
}

// New returns a client of the server at baseURL that trusts caPEM in
// addition to the system roots (caPEM may be nil).
func New(baseURL string, caPEM []byte) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: want http(s)://host:port", baseURL)
	}
	hc, err := HTTPClient(caPEM)
	if err != nil {
		return nil, err
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTPClient: hc, UserAgent: "ferry-cli"}, nil
}

// HTTPClient returns an HTTP client that trusts caPEM besides the system roots.
func HTTPClient(caPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the CA file holds no PEM certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// Error is an error answer of the server, in whichever shape its surface uses.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Do sends a request with a JSON body (if in is not nil) and decodes a JSON
// answer into out (if not nil). Non-2xx answers become *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (*http.Response, error) {
	req, err := c.NewRequest(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	return c.Send(req, out)
}

// NewRequest returns a request for path under BaseURL with in as its JSON
// body (none if in is nil); Send sends it.
func (c *Client) NewRequest(ctx context.Context, method, path string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Send sends a prepared request with the client's token and decodes a JSON
// answer into out (if not nil).
func (c *Client) Send(req *http.Request, out any) (*http.Response, error) {
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return resp, decodeError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp, nil
}

// decodeError reads the error shapes of Ferry's surfaces: ARM
// {"error":{"code","message"}}, legacy {"Code","Message"}, OAuth2
// {"error","error_description"}, IoT Hub {"Message","ExceptionMessage"}.
func decodeError(status int, data []byte) error {
	e := &Error{Status: status, Message: http.StatusText(status)}
	var v struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Code             json.RawMessage `json:"Code"`
		Message          string          `json:"Message"`
	}
	if json.Unmarshal(data, &v) != nil {
		return e
	}
	var arm struct{ Code, Message string }
	switch {
	case len(v.Error) > 0 && json.Unmarshal(v.Error, &arm) == nil && arm.Message != "":
		e.Code, e.Message = arm.Code, arm.Message
	case len(v.Error) > 0:
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			e.Code, e.Message = s, v.ErrorDescription
		}
	case v.Message != "":
		e.Code, e.Message = strings.Trim(string(v.Code), `"`), v.Message
	}
	return e
}
