package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Grant is how the client signs in.
type Grant struct {
	Username     string // password grant, for users
	Password     string
	ClientID     string // client-credentials grant, for service principals
	ClientSecret string
	Scope        string // optional audience scope
}

// Token is an access token and when it expires.
type Token struct {
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Login signs in at the server's /oauth2/token endpoint and keeps the token
// in c.Token.
func (c *Client) Login(ctx context.Context, g Grant) (*Token, error) {
	form := url.Values{}
	switch {
	case g.ClientID != "":
		form.Set("grant_type", "client_credentials")
		form.Set("client_id", g.ClientID)
		form.Set("client_secret", g.ClientSecret)
	case g.Username != "":
		form.Set("grant_type", "password")
		form.Set("username", g.Username)
		form.Set("password", g.Password)
	default:
		return nil, fmt.Errorf("login needs a user name or a client ID")
	}
	if g.Scope != "" {
		form.Set("scope", g.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	saved := c.Token
	c.Token = ""
	_, err = c.Send(req, &out)
	c.Token = saved
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	c.Token = out.AccessToken
	return &Token{AccessToken: out.AccessToken, ExpiresAt: time.Now().Add(time.Duration(out.ExpiresIn) * time.Second)}, nil
}
