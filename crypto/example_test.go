package crypto_test

import (
	"fmt"

	"github.com/tokenhandler/tokenhandler/crypto"
)

func Example() {
	// A TEST KEY, from contract §3; generate real ones with `thctl keygen`.
	ring, err := crypto.ParseKeyring("7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926")
	if err != nil {
		panic(err)
	}
	plain, err := ring.Open(nil, []byte("AUixxnN28w2MjVK7sMZ3GqErPlw15NwIng-V8amEv5eu43Wr1nzhif1hU2QpKbw_L55GVxD0Kz4gKVG539ywk6g"))
	fmt.Println(string(plain), err)
	// Output: 42665300-efe8-419d-be52-07b53e208f46 <nil>
}

func ExampleKeyring_Seal() {
	newKey, oldKey := crypto.GenerateKey(), crypto.GenerateKey()
	ring, err := crypto.NewKeyring(newKey, oldKey) // newKey seals, both open
	if err != nil {
		panic(err)
	}
	cookie, err := ring.Seal(nil, []byte("an access token"), crypto.FormatDARE)
	if err != nil {
		panic(err)
	}
	dst := make([]byte, 0, len(cookie)) // room enough: Open allocates nothing
	plain, err := ring.Open(dst, cookie)
	fmt.Println(string(plain), err)
	fmt.Println(newKey) // keys never print
	// Output:
	// an access token <nil>
	// [REDACTED]
}
