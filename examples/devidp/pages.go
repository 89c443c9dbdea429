package devidp

import (
	"bytes"
	"cmp"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Banner is shown at the top of every HTML page the provider serves.
const Banner = "DEVELOPMENT ONLY — not an identity provider"

// page is what the templates show; each page uses some of the fields.
type page struct {
	Title  string
	Banner string
	Issuer string

	// error and logged-out pages; Sent is what the back channel answered
	Message, Note, Back string
	Sent                []Delivery

	// login page
	RequestID, ClientID, LoginHint, Error string
	Scopes                                []string
	Users                                 []User

	// index page
	Clients   []*Client
	Sessions  []sessionRow
	FormToken string
}

// sessionRow is one live provider session on the index page.
type sessionRow struct {
	ID, Subject, ClientID, Started string
	started                        time.Time
}

const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}} · development IdP</title>
<style>
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1b1b1b; background: #f4f4f6; }
.banner { position: sticky; top: 0; padding: .8em 1em; background: #b00020; color: #fff; text-align: center;
  font-weight: 700; font-size: 1.1em; letter-spacing: .02em; box-shadow: 0 2px 6px rgba(0,0,0,.3); }
.banner small { display: block; font-weight: 400; font-size: .8em; }
main { max-width: 34em; margin: 2em auto; padding: 1.5em 2em; background: #fff; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4em; margin-top: 0; }
label { display: block; font-weight: 600; margin-top: 1em; }
input[type=text] { font: inherit; padding: .4em; width: 100%; box-sizing: border-box; }
button { font: inherit; padding: .5em 1em; margin: .3em .3em .3em 0; cursor: pointer; border-radius: 4px;
  border: 1px solid #1f4e99; background: #2b63c0; color: #fff; }
button.user { display: block; width: 100%; text-align: left; background: #fff; color: #1b1b1b; border-color: #bbb; }
button.secondary { background: #fff; color: #444; border-color: #bbb; }
.error { color: #b00020; font-weight: 600; }
.note { color: #555; }
code { background: #eee; padding: 0 .2em; }
</style>
</head>
<body>
<div class="banner" role="alert">{{.Banner}}<small>No passwords, no security: anyone who reaches this page can sign in as anyone.</small></div>
<main>
{{template "content" .}}
</main>
</body>
</html>
`

var pages = map[string]*template.Template{
	"login": parsePage(`
<h1>Sign in</h1>
<p>Application <code>{{.ClientID}}</code> asks you to sign in{{if .Scopes}} (scope{{range .Scopes}} <code>{{.}}</code>{{end}}){{end}}.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="request_id" value="{{.RequestID}}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{.LoginHint}}" autocomplete="username" autofocus>
<button type="submit">Sign in</button>
<p>or pick a demo user:</p>
{{range .Users}}<button type="submit" class="user" name="username" value="{{.Subject}}">{{.Name}} <small>({{.Subject}})</small></button>
{{end}}<button type="submit" class="secondary" name="cancel" value="1">Cancel</button>
</form>
`),
	"error": parsePage(`
<h1>{{.Title}}</h1>
<p class="error">{{.Message}}</p>
`),
	// What a logout ended, with what each client's back-channel logout
	// endpoint answered.
	"loggedout": parsePage(`
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Sent}}<h2>Back-channel logout</h2>
<ul>{{range .Sent}}<li>{{if not .Err}}<code>{{.ClientID}}</code> acknowledged ({{.Status}}){{else}}<span class="error"><code>{{.ClientID}}</code> did not acknowledge: {{.Err}}</span>{{end}}</li>{{end}}</ul>{{end}}
{{if .Back}}<p><a href="{{.Back}}">Back to the application</a></p>{{else}}<p><a href="/">Back to the development IdP</a></p>{{end}}
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
`),
	"index": parsePage(`
<h1>Development OpenID Provider</h1>
<p>Issuer <code>{{.Issuer}}</code>; configuration at
<a href="{{.Issuer}}/.well-known/openid-configuration">/.well-known/openid-configuration</a>.</p>
<h2>Demo users</h2>
<ul>{{range .Users}}<li><code>{{.Subject}}</code>: {{.Name}}, {{.Email}}</li>{{end}}</ul>
<h2>Clients</h2>
<ul>{{range .Clients}}<li><code>{{.ID}}</code>, redirect URIs{{range .RedirectURIs}} <code>{{.}}</code>{{end}}{{if .BackchannelLogoutURI}}, back-channel logout <code>{{.BackchannelLogoutURI}}</code>{{end}}</li>{{end}}</ul>
<h2>Sessions</h2>
{{if .Sessions}}<ul>{{range .Sessions}}<li><form method="post" action="/sessions/end">
<input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="sid" value="{{.ID}}">
<code>{{.Subject}}</code> at <code>{{.ClientID}}</code> since {{.Started}}
<button type="submit" class="secondary">Log out this session</button></form></li>{{end}}</ul>
{{else}}<p class="note">Nobody is signed in.</p>{{end}}
<h2>Log a user out everywhere</h2>
<p class="note">Ends every session of the user and sends each client with a back-channel logout URI a logout token that names the user (sub) and no session.</p>
{{range .Users}}<form method="post" action="/users/logout">
<input type="hidden" name="form_token" value="{{$.FormToken}}"><input type="hidden" name="sub" value="{{.Subject}}">
<button type="submit" name="everywhere" value="{{.Subject}}">Log out {{.Subject}} everywhere</button></form>
{{end}}`),
}

func parsePage(content string) *template.Template {
	t := template.Must(template.New("layout").Parse(layout))
	return template.Must(t.New("content").Parse(content))
}

// writePage renders one of pages with the headers every page gets.
func (s *Server) writePage(w http.ResponseWriter, status int, name string, p *page) {
	p.Banner, p.Issuer = Banner, s.issuer
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		panic("devidp: internal error: page " + name + ": " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// No framing (clickjacking on the login buttons), no script, and no
	// Referer that would carry the authorization request's state.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// loginPage shows the login form of the authorization request q, waiting
// under id.
func (s *Server) loginPage(w http.ResponseWriter, status int, id string, q url.Values, msg string) {
	s.writePage(w, status, "login", &page{
		Title:     "Sign in",
		RequestID: id,
		ClientID:  q.Get("client_id"),
		Scopes:    strings.Fields(q.Get("scope")),
		LoginHint: q.Get("login_hint"),
		Users:     Users,
		Error:     msg,
	})
}

func (s *Server) errorPage(w http.ResponseWriter, status int, title, msg string) {
	s.writePage(w, status, "error", &page{Title: title, Message: msg})
}

// loggedOutPage says that a logout ended what msg says, and what the back
// channel answered; back, when set, links back to the application.
func (s *Server) loggedOutPage(w http.ResponseWriter, title, msg, back, note string, sent []Delivery) {
	s.writePage(w, http.StatusOK, "loggedout", &page{Title: title, Message: msg, Back: back, Note: note, Sent: sent})
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	clients := make([]*Client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	slices.SortFunc(clients, func(a, b *Client) int { return strings.Compare(a.ID, b.ID) })
	now := time.Now()
	var sessions []sessionRow
	s.mu.Lock()
	for _, sess := range s.sessions {
		if now.Before(sess.expires) {
			sessions = append(sessions, sessionRow{ID: sess.id, Subject: sess.user.Subject, ClientID: sess.clientID,
				Started: sess.started.Format(time.TimeOnly), started: sess.started})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(sessions, func(a, b sessionRow) int {
		return cmp.Or(a.started.Compare(b.started), strings.Compare(a.ID, b.ID))
	})
	s.writePage(w, http.StatusOK, "index", &page{Title: "Development IdP", Users: Users, Clients: clients,
		Sessions: sessions, FormToken: s.formToken})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, http.StatusNotFound, "Not found", "There is no page "+quote(r.URL.Path)+" here.")
}

func quote(s string) string { return strconv.Quote(s) }
