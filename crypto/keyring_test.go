package crypto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseKeyring(t *testing.T) {
	upper := strings.ToUpper(specKey)
	tests := []struct {
		name    string
		keys    []string
		wantErr string // "" for success
	}{
		{"one key", []string{specKey}, ""},
		{"two keys", []string{otherTestKey, specKey}, ""},
		{"upper case", []string{upper}, ""},
		{"no keys", nil, "at least one key"},
		{"short", []string{specKey[:62]}, "key 1 must be 64 hex characters (32 bytes), got 62"},
		{"long", []string{specKey + "00"}, "key 1 must be 64 hex characters (32 bytes), got 66"},
		{"empty", []string{specKey, ""}, "key 2 must be 64 hex characters (32 bytes), got 0"},
		{"not hex", []string{specKey[:63] + "g"}, "key 1 contains a character that is not hexadecimal"},
		{"0x prefix", []string{"0x" + specKey[2:]}, "key 1 contains a character that is not hexadecimal"},
		{"duplicate", []string{specKey, otherTestKey, specKey}, "key 3 duplicates key 1"},
		{"duplicate in other case", []string{specKey, upper}, "key 2 duplicates key 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseKeyring(tt.keys...)
			if tt.wantErr == "" {
				if err != nil || r.Len() != len(tt.keys) {
					t.Fatalf("ParseKeyring = %v, %v", r, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseKeyring succeeded, want error %q", tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "crypto: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
			for _, k := range tt.keys {
				if len(k) > 8 && strings.Contains(err.Error(), k[:8]) {
					t.Fatalf("error %q quotes key material", err)
				}
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	k, err := ParseKey(specKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(k.AppendHex(nil)); got != specKey {
		t.Fatalf("AppendHex = %s", got)
	}
	if _, err := ParseKey("zz"); err == nil || err.Error() != "crypto: key must be 64 hex characters (32 bytes), got 2 characters" {
		t.Fatalf("ParseKey(short) error = %v", err)
	}
	other, _ := ParseKey(otherTestKey)
	if !k.Equal(k) || k.Equal(other) {
		t.Fatal("Equal is wrong")
	}
	a, b := GenerateKey(), GenerateKey()
	if a.Equal(b) || len(a.AppendHex(nil)) != 64 {
		t.Fatal("GenerateKey returned equal or malformed keys")
	}
}

// TestKeysNeverPrint formats keys and rings every way a log line or an error
// might, and looks for any of the key's bytes.
func TestKeysNeverPrint(t *testing.T) {
	k, _ := ParseKey(specKey)
	ring, _ := NewKeyring(k)
	type config struct {
		Key  Key
		Keys []Key
		Ring *Keyring
	}
	c := config{Key: k, Keys: []Key{k}, Ring: ring}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "% x"} {
		outputs = append(outputs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, c), fmt.Sprintf(verb, ring), fmt.Sprintf(verb, &c))
	}
	raw := string(k.b[:])
	for _, out := range outputs {
		for _, secret := range []string{specKey[:8], strings.ToUpper(specKey[:8]), specKey[20:28], raw[:4], "123 153 39"} {
			if strings.Contains(out, secret) {
				t.Fatalf("key material %q printed in %q", secret, out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(k), redacted) || !strings.Contains(string(js), redacted) {
		t.Fatalf("placeholder missing: %v / %s", k, js)
	}
}

// TestKeyRotation: the first key seals, every key opens, in order.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := GenerateKey(), GenerateKey()
	before, _ := NewKeyring(oldKey)
	during, _ := NewKeyring(newKey, oldKey)
	after, _ := NewKeyring(newKey)
	plain := []byte("a session token")
	for _, f := range []Format{FormatV1, FormatDARE} {
		oldCookie, _ := before.Seal(nil, plain, f)
		newCookie, _ := during.Seal(nil, plain, f)
		for _, tc := range []struct {
			name   string
			ring   *Keyring
			cookie []byte
			opens  bool
		}{
			{"old cookie, ring during rotation", during, oldCookie, true},
			{"new cookie, ring during rotation", during, newCookie, true},
			{"new cookie, new key alone", after, newCookie, true},
			{"new cookie, old key alone", before, newCookie, false},
			{"old cookie after the old key is removed", after, oldCookie, false},
		} {
			got, err := tc.ring.Open(nil, tc.cookie)
			if opened := err == nil && bytes.Equal(got, plain); opened != tc.opens {
				t.Errorf("%s, %s: opened = %v, want %v", f, tc.name, opened, tc.opens)
			}
		}
	}
}

func TestSeal(t *testing.T) {
	ring := newTestRing(t, 1)
	a, _ := ring.Seal(nil, []byte("same"), FormatV1)
	b, _ := ring.Seal(nil, []byte("same"), FormatV1)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal: the nonce is not random")
	}
	zero, _ := ring.Seal([]byte("x="), []byte("same"), 0)
	if !bytes.HasPrefix(zero, []byte("x=")) || zero[2] != 'A' { // 0x01 encodes as "A" + ...
		t.Fatalf("the zero Format does not seal v1 after dst: %q", zero)
	}
	empty, err := ring.Seal(nil, nil, FormatV1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ring.Open(nil, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty v1 plaintext: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name    string
		plain   []byte
		f       Format
		wantErr string
	}{
		{"empty DARE", nil, FormatDARE, "crypto: a DARE cookie cannot hold an empty plaintext"},
		{"oversized DARE", make([]byte, MaxDAREPlaintext+1), FormatDARE, "crypto: a DARE cookie holds at most 65536 bytes, got 65537"},
		{"unknown format", []byte("x"), Format(0x03), "crypto: cannot seal in unknown format 0x03"},
		{"v2 without associated data", []byte("x"), FormatV2, "crypto: a v2 cookie needs associated data"},
	} {
		out, err := ring.Seal([]byte("keep"), tc.plain, tc.f)
		if err == nil || err.Error() != tc.wantErr || string(out) != "keep" {
			t.Errorf("%s: Seal = %q, %v; want dst unchanged and %q", tc.name, out, err, tc.wantErr)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"v1": FormatV1, "v2": FormatV2, "dare": FormatDARE} {
		if f, err := ParseFormat(s); err != nil || f != want || f.String() != s {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("V1"); err == nil {
		t.Error("ParseFormat accepts V1")
	}
}

func TestKeyringShares(t *testing.T) {
	a, b, c := GenerateKey(), GenerateKey(), GenerateKey()
	ab, _ := NewKeyring(a, b)
	ca, _ := NewKeyring(c, a)
	cOnly, _ := NewKeyring(c)
	if !ab.Shares(ca) || !ca.Shares(ab) {
		t.Error("rings holding a in common do not share")
	}
	if ab.Shares(cOnly) || cOnly.Shares(ab) {
		t.Error("rings with no key in common share")
	}
}
