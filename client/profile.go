package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Profile is what `ferry login` keeps in the user's config directory so that
// later commands reach the same server with the same token.
type Profile struct {
	Server    string    `json:"server"`
	CAFile    string    `json:"caFile,omitempty"`
	Principal string    `json:"principal"` // user name or client ID, for display
	Token     string    `json:"accessToken"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Defaults for the integrated command tree, like az's defaults.group and
	// defaults.sphere.catalog.
	DefaultResourceGroup string `json:"defaultResourceGroup,omitempty"`
	DefaultCatalog       string `json:"defaultCatalog,omitempty"`
	DefaultSubscription  string `json:"defaultSubscription,omitempty"`
	DefaultTenant        string `json:"defaultTenant,omitempty"`
}

// ProfilePath returns where the profile lives: $FERRY_CONFIG_DIR, or
// ferry/profile.json under the user's config directory.
func ProfilePath(getenv func(string) string) (string, error) {
	if d := getenv("FERRY_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "profile.json"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(d, "ferry", "profile.json"), nil
}

// ErrNoProfile means nobody has logged in yet.
var ErrNoProfile = errors.New("not logged in: run 'ferry login' first")

// LoadProfile reads the profile at path.
func LoadProfile(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoProfile
	}
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read profile %s: %w", path, err)
	}
	return &p, nil
}

// Save writes the profile to path, readable by the user only.
func (p *Profile) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	return os.Rename(tmp, path)
}

// Client returns a client of the profile's server carrying its token.
func (p *Profile) Client() (*Client, error) {
	var ca []byte
	if p.CAFile != "" {
		b, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		ca = b
	}
	c, err := New(p.Server, ca)
	if err != nil {
		return nil, err
	}
	if !p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt) {
		return nil, errors.New("the saved token has expired: run 'ferry login' again")
	}
	c.Token = p.Token
	return c, nil
}
