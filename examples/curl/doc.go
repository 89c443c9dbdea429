// Package curl holds walkthrough.sh, the token handler driven by curl
// against the development stack of `make run`: login, an API call through
// the OAuth Proxy, refresh and logout, with the cookies kept by the script
// (curl does not keep Secure cookies received over plain http). Its test
// runs the script against the stack.
package curl
