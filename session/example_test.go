package session_test

import (
	"fmt"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/session"
)

func ExampleCodec() {
	ring, err := crypto.NewKeyring(crypto.GenerateKey())
	if err != nil {
		panic(err)
	}
	codec, err := session.NewCodec(ring, crypto.FormatV2) // reads v2 only
	if err != nil {
		panic(err)
	}
	// One envelope per login: every cookie of the session carries its ID.
	env := session.Envelope{
		ID: session.NewID(), Started: 1_767_225_600, Expires: 1_767_225_600 + 12*3600,
		Sub: session.HashSub("https://login.example.com/", "alice"),
	}
	cookie, err := codec.Seal(nil, session.RefreshToken, 0, &env, []byte("a refresh token"))
	if err != nil {
		panic(err)
	}

	var got session.Envelope
	value, format, err := codec.Open(nil, cookie, session.RefreshToken, 0, &got)
	fmt.Println(string(value), format, err, got == env, got.Live(1_767_225_600+3600, 12*3600))

	// The same value in another slot does not open, with the one opaque error.
	_, _, err = codec.Open(nil, cookie, session.CSRF, 0, &got)
	fmt.Println(err)
	// Output:
	// a refresh token v2 <nil> true true
	// crypto: cannot open cookie
}
