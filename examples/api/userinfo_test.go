package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/examples/api"
	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// userinfoAS is a userinfo endpoint (OpenID Connect Core §5.3) that knows
// a few opaque tokens, and counts the questions it gets per token.
type userinfoAS struct {
	*httptest.Server
	mu     sync.Mutex
	users  map[string]string // token → sub
	asked  map[string]int
	header []string // every Authorization header seen
}

func startUserinfoAS(t *testing.T) *userinfoAS {
	t.Helper()
	as := &userinfoAS{users: map[string]string{"opaque-alice": "alice", "opaque-bob": "bob"}, asked: map[string]int{}}
	as.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok := strings.TrimPrefix(auth, "Bearer ")
		as.mu.Lock()
		as.asked[tok]++
		as.header = append(as.header, auth)
		sub, ok := as.users[tok]
		as.mu.Unlock()
		switch {
		case r.URL.Path != "/me" || r.Method != http.MethodGet:
			http.NotFound(w, r)
		case tok == "broken":
			http.Error(w, "boom", http.StatusInternalServerError)
		case tok == "html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<p>sign in</p>"))
		case tok == "no-sub":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"Nobody"}`))
		case tok == "no-openid":
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
			w.WriteHeader(http.StatusForbidden)
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_token"}`))
		default:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			json.NewEncoder(w).Encode(map[string]string{"sub": sub, "name": "User " + sub})
		}
	}))
	t.Cleanup(as.Close)
	return as
}

func (as *userinfoAS) questions(tok string) int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.asked[tok]
}

func (as *userinfoAS) revoke(tok string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	delete(as.users, tok)
}

// api is the API asking the AS's userinfo endpoint, with change applied to
// its options when not nil.
func (as *userinfoAS) api(t *testing.T, change func(*api.Options)) *api.API {
	t.Helper()
	return newAPI(t, api.Options{UserinfoURL: as.URL + "/me"}, change)
}

// clock is a settable time for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestUserinfoValidToken(t *testing.T) {
	as := startUserinfoAS(t)
	a := as.api(t, nil)
	for _, tc := range []struct{ tok, sub string }{{"opaque-alice", "alice"}, {"opaque-bob", "bob"}} {
		r := call(t, a, http.MethodGet, "/api/orders/7", "Bearer "+tc.tok, nil)
		if r.status != http.StatusOK || r.json["subject"] != tc.sub || r.json["name"] != "User "+tc.sub || r.json["path"] != "/api/orders/7" {
			t.Errorf("%s: %d %s", tc.tok, r.status, r.body)
		}
	}
	if r := call(t, a, http.MethodPost, "/api/echo", "Bearer opaque-alice", []byte(`{"a":1}`)); r.status != http.StatusOK || string(r.body) != `{"a":1}` {
		t.Errorf("echo: %d %s", r.status, r.body)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.header) != 2 || as.header[0] != "Bearer opaque-alice" || as.header[1] != "Bearer opaque-bob" {
		t.Errorf("the userinfo endpoint saw Authorization %q, want each token once (the echo answered from the cache)", as.header)
	}
}

func TestUserinfoRefusals(t *testing.T) {
	as := startUserinfoAS(t)
	closed := "http://" + bintest.FreeTCPAddr(t) + "/me"
	a := as.api(t, nil)
	down := as.api(t, func(o *api.Options) { o.UserinfoURL = closed })
	for _, tc := range []struct {
		name   string
		api    *api.API
		auth   string
		status int
		asked  bool // whether the endpoint is asked
	}{
		{"no header", a, "", http.StatusUnauthorized, false},
		{"unknown token", a, "Bearer opaque-mallory", http.StatusUnauthorized, true},
		{"not an RFC 6750 token", a, "Bearer opaque alice", http.StatusUnauthorized, false},
		{"not an RFC 6750 token either", a, "Bearer {opaque-alice}", http.StatusUnauthorized, false},
		{"only padding", a, "Bearer ==", http.StatusUnauthorized, false},
		{"no openid scope (403)", a, "Bearer no-openid", http.StatusUnauthorized, true},
		{"endpoint fails", a, "Bearer broken", http.StatusServiceUnavailable, true},
		{"not JSON", a, "Bearer html", http.StatusServiceUnavailable, true},
		{"no sub", a, "Bearer no-sub", http.StatusServiceUnavailable, true},
		{"endpoint unreachable", down, "Bearer opaque-alice", http.StatusServiceUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := strings.TrimPrefix(tc.auth, "Bearer ")
			before := as.questions(tok)
			r := call(t, tc.api, http.MethodGet, "/api/hello", tc.auth, nil)
			switch tc.status {
			case http.StatusUnauthorized:
				challenge := invalidChallenge
				if tc.auth == "" {
					challenge = `Bearer realm="api"`
				}
				want401(t, r, challenge)
			default:
				if r.status != tc.status || r.json["code"] != "server_error" || r.header["WWW-Authenticate"] != "" {
					t.Errorf("%d %v %s, want %d server_error", r.status, r.header, r.body, tc.status)
				}
			}
			if asked := as.questions(tok) > before; asked != tc.asked {
				t.Errorf("the userinfo endpoint asked: %v, want %v", asked, tc.asked)
			}
			if tok != "" && strings.Contains(string(r.body), tok) {
				t.Errorf("the answer repeats the token: %s", r.body)
			}
		})
	}
}

// TestUserinfoCache: a positive answer is reused until it is
// UserinfoCacheTTL old, a negative one never; a JWT's exp ends reuse
// earlier.
func TestUserinfoCache(t *testing.T) {
	as := startUserinfoAS(t)
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	a := as.api(t, func(o *api.Options) { o.Now = clk.Now })
	get := func(tok string) int {
		t.Helper()
		return call(t, a, http.MethodGet, "/api/hello", "Bearer "+tok, nil).status
	}

	// Concurrent callers share one answer once it is cached (and give the
	// race detector something to look at).
	if s := get("opaque-alice"); s != http.StatusOK {
		t.Fatalf("first call: %d", s)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if s := call(t, a, http.MethodGet, "/api/hello", "Bearer opaque-alice", nil).status; s != http.StatusOK {
				t.Errorf("cached call: %d", s)
			}
		})
	}
	wg.Wait()
	if n := as.questions("opaque-alice"); n != 1 {
		t.Errorf("%d questions for 9 calls within the cache time, want 1", n)
	}

	// Revoked at the AS: still accepted until the cached answer ages out.
	as.revoke("opaque-alice")
	clk.advance(api.UserinfoCacheTTL - time.Millisecond)
	if s := get("opaque-alice"); s != http.StatusOK || as.questions("opaque-alice") != 1 {
		t.Errorf("just within the cache time: %d after %d questions", s, as.questions("opaque-alice"))
	}
	clk.advance(time.Millisecond)
	if s := get("opaque-alice"); s != http.StatusUnauthorized || as.questions("opaque-alice") != 2 {
		t.Errorf("after the cache time: %d after %d questions, want 401 after 2", s, as.questions("opaque-alice"))
	}

	// Refusals are not cached: each call asks.
	for range 3 {
		get("opaque-mallory")
	}
	if n := as.questions("opaque-mallory"); n != 3 {
		t.Errorf("%d questions for 3 calls with a refused token, want 3", n)
	}

	// A JWT is reused only until its exp, here 3 s away.
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"carol","exp":%d}`, clk.Now().Add(3*time.Second).Unix()))
	jwtTok := "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
	as.mu.Lock()
	as.users[jwtTok] = "carol"
	as.mu.Unlock()
	get(jwtTok)
	clk.advance(2 * time.Second)
	get(jwtTok)
	if n := as.questions(jwtTok); n != 1 {
		t.Errorf("%d questions for a JWT before its exp, want 1", n)
	}
	clk.advance(time.Second)
	get(jwtTok)
	if n := as.questions(jwtTok); n != 2 {
		t.Errorf("%d questions for a JWT at its exp, want 2", n)
	}
}

func TestUserinfoCacheTTL(t *testing.T) {
	as := startUserinfoAS(t)
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		after time.Duration // the second call
		want  int           // questions after two calls
	}{
		{"shorter, within", 2 * time.Second, 1999 * time.Millisecond, 1},
		{"shorter, past", 2 * time.Second, 2 * time.Second, 2},
		{"off", -1, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			a := as.api(t, func(o *api.Options) { o.Now = clk.Now; o.UserinfoCacheTTL = tc.ttl })
			tok := "opaque-bob"
			before := as.questions(tok)
			call(t, a, http.MethodGet, "/api/hello", "Bearer "+tok, nil)
			clk.advance(tc.after)
			if r := call(t, a, http.MethodGet, "/api/hello", "Bearer "+tok, nil); r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if n := as.questions(tok) - before; n != tc.want {
				t.Errorf("%d questions, want %d", n, tc.want)
			}
		})
	}
}

// TestUserinfoWithDevIdP uses the development IdP's own userinfo endpoint,
// at its .localhost name, with a token from its login page.
func TestUserinfoWithDevIdP(t *testing.T) {
	e := startIdP(t)
	tok := e.token(t, "alice")
	a, err := api.New(api.Options{UserinfoURL: e.issuer + "/userinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, a, http.MethodGet, "/api/hello", "Bearer "+tok, nil); r.status != http.StatusOK || r.json["subject"] != "alice" || r.json["name"] != "Alice Anderson" {
		t.Errorf("%d %s", r.status, r.body)
	}
	want401(t, call(t, a, http.MethodGet, "/api/hello", "Bearer "+flip(tok), nil), invalidChallenge)
}

// TestNewUserinfo: New with a userinfo URL asks nothing yet (the refused
// userinfo options are TestNew's).
func TestNewUserinfo(t *testing.T) {
	var n atomic.Int32
	if _, err := api.New(api.Options{UserinfoURL: "http://a/me", HTTPClient: countingClient(&n, 0)}); err != nil || n.Load() != 0 {
		t.Errorf("New: %v, %d requests; want no error and no request", err, n.Load())
	}
}
