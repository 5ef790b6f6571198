package pki_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

func TestDeriveKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a1 := mustLoad(t, dir, nil, t0)
	k1, err := a1.DeriveKey("secrets")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("len = %d, want 32", len(k1))
	}
	t.Run("SameAfterRestart", func(t *testing.T) {
		k, err := mustLoad(t, dir, nil, t0.Add(time.Hour)).DeriveKey("secrets")
		if err != nil || !bytes.Equal(k, k1) {
			t.Errorf("key after restart differs (err %v)", err)
		}
	})
	t.Run("OtherPurpose", func(t *testing.T) {
		k, err := a1.DeriveKey("other")
		if err != nil || bytes.Equal(k, k1) {
			t.Errorf("another purpose gave the same key (err %v)", err)
		}
	})
	t.Run("OtherCA", func(t *testing.T) {
		k, err := mustLoad(t, filepath.Join(t.TempDir(), "pki"), nil, t0).DeriveKey("secrets")
		if err != nil || bytes.Equal(k, k1) {
			t.Errorf("another CA gave the same key (err %v)", err)
		}
	})
	t.Run("ErrPurposeRequired", func(t *testing.T) {
		if _, err := a1.DeriveKey(""); err == nil {
			t.Error("no error without a purpose")
		}
	})
}
