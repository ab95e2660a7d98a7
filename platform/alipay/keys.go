package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ParsePublicKey reads the Alipay public key as PEM ("PUBLIC KEY", or
// PKCS #1 "RSA PUBLIC KEY"), or as the bare base64 of the PUBLIC KEY's DER
// that Alipay's console shows, line breaks allowed. The key must be RSA
// of at least 2048 bits.
func ParsePublicKey(s string) (*rsa.PublicKey, error) {
	var der []byte
	pkcs1 := false
	if block, _ := pem.Decode([]byte(strings.TrimSpace(s))); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
		case "RSA PUBLIC KEY":
			pkcs1 = true
		default:
			return nil, fmt.Errorf("alipay: a PEM block of type %q; want PUBLIC KEY", block.Type)
		}
		der = block.Bytes
	} else {
		var err error
		bare := strings.Join(strings.Fields(s), "")
		if der, err = base64.StdEncoding.DecodeString(bare); err != nil || len(der) == 0 {
			return nil, errors.New("alipay: public key is neither PEM nor base64")
		}
	}
	var pub *rsa.PublicKey
	if pkcs1 {
		k, err := x509.ParsePKCS1PublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("alipay: not a PKCS #1 RSA public key: %w", err)
		}
		pub = k
	} else {
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("alipay: not a public key: %w", err)
		}
		var ok bool
		if pub, ok = k.(*rsa.PublicKey); !ok {
			return nil, errors.New("alipay: not an RSA public key")
		}
	}
	if n := pub.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("alipay: public key has %d bits; RSA2 needs at least %d", n, minKeyBits)
	}
	return pub, nil
}
