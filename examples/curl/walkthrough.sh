#!/usr/bin/env bash
# walkthrough.sh: the token handler seen from curl. Logs in to the
# development stack of `make run` as a demo user, calls the demo API through
# the OAuth Proxy, prints its answer, and logs out: the calls the demo SPA
# makes, one by one.
#
#   make run                                # in another terminal
#   examples/curl/walkthrough.sh            # or: -user bob, -h for the rest
#
# It keeps the cookies itself instead of using curl's cookie jar. The token
# handler's cookies are Secure, and curl (7.88 at least) does not store a
# Secure cookie received over plain http, not even from *.localhost, which
# browsers treat as a secure context: with `curl -b jar -c jar` the login
# cookie is lost and login/end answers "No login is in progress". So every
# Set-Cookie is read here, kept with its Path, and sent back only to the
# paths it belongs to, as a browser does.
#
# Needs bash 4 and curl, nothing else. It never prints a cookie, token, code
# or CSRF value; cookies, the CSRF header and request bodies reach curl
# through files in a private temporary directory, not its command line.
set -euo pipefail

usage() {
	cat <<EOF
Usage: $0 [flags]

Logs in to the development stack (make run) with curl, calls the API through
the OAuth Proxy, prints the API's answer, and logs out.

  -spa URL            the SPA's URL, the login's redirect URI (\$SPA_URL; $SPA_URL)
  -agent URL          the OAuth Agent's base URL (\$AGENT_URL; $AGENT_URL)
  -api URL            the API's base URL, through the OAuth Proxy (\$API_URL; $API_URL)
  -user NAME          the demo user to log in as: alice, bob or carol (\$DEMO_USER; $DEMO_USER)
  -cookie-prefix P    the cookie name prefix, for the x-P-csrf header (\$COOKIE_PREFIX; $COOKIE_PREFIX)
  -h                  this help

Exit status 0 when every step worked, 1 when one failed, 2 on bad flags.
EOF
}

SPA_URL=${SPA_URL:-http://www.example.localhost:3000/}
AGENT_URL=${AGENT_URL:-http://api.example.localhost:8080/oauth-agent}
API_URL=${API_URL:-http://api.example.localhost:8081/api}
DEMO_USER=${DEMO_USER:-alice}
COOKIE_PREFIX=${COOKIE_PREFIX:-example}

while (($#)); do
	flag=${1#-}
	flag=${flag#-} # -x and --x alike
	case $flag in
	h | help)
		usage
		exit 0
		;;
	spa | agent | api | user | cookie-prefix)
		if (($# < 2)); then
			echo "walkthrough: flag -$flag needs a value" >&2
			exit 2
		fi
		case $flag in
		spa) SPA_URL=$2 ;;
		agent) AGENT_URL=$2 ;;
		api) API_URL=$2 ;;
		user) DEMO_USER=$2 ;;
		cookie-prefix) COOKIE_PREFIX=$2 ;;
		esac
		shift 2
		;;
	*)
		echo "walkthrough: unknown flag $1 (-h lists them)" >&2
		exit 2
		;;
	esac
done
AGENT_URL=${AGENT_URL%/}
API_URL=${API_URL%/}

if ! command -v curl >/dev/null; then
	echo "walkthrough: curl is not installed" >&2
	exit 1
fi
for v in SPA_URL AGENT_URL API_URL; do
	if [[ ! ${!v} =~ ^https?://[^/]+ ]]; then
		echo "walkthrough: $v is not an http(s) URL: ${!v}" >&2
		exit 2
	fi
done
# The browser's Origin for the SPA: scheme://host[:port].
[[ $SPA_URL =~ ^(https?://[^/?#]+) ]]
ORIGIN=${BASH_REMATCH[1]}

work=$(mktemp -d)
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

fail() {
	echo "walkthrough: $*" >&2
	exit 1
}

# The cookie store: "host path name" → value. Cookies ignore ports (RFC 6265
# §8.5), so the agent's and the proxy's cookies share api.example.localhost.
declare -A jar

# split_url URL sets host (without port, lower case) and upath (the path,
# "/" when empty, without query).
split_url() {
	local rest=${1#*://}
	local authority=${rest%%[/?#]*}
	host=${authority,,}
	[[ $host =~ ^(.*):[0-9]*$ ]] && host=${BASH_REMATCH[1]}
	upath=${rest#"$authority"}
	upath=${upath%%[?#]*}
	upath=${upath:-/}
}

# path_matches COOKIE_PATH REQUEST_PATH: RFC 6265 §5.1.4.
path_matches() {
	local cp=$1 rp=$2
	[[ $rp == "$cp" ]] && return 0
	[[ $rp == "$cp"* ]] || return 1
	[[ $cp == */ || ${rp:${#cp}:1} == / ]]
}

# cookie_header HOST PATH prints the Cookie header's value for a request.
cookie_header() {
	local key h p n out=""
	for key in "${!jar[@]}"; do
		read -r h p n <<<"$key"
		if [[ $h == "$1" ]] && path_matches "$p" "$2"; then
			out+="${out:+; }$n=${jar[$key]}"
		fi
	done
	printf '%s' "$out"
}

# store_cookies HOST PATH reads the Set-Cookie fields of $work/head into the
# jar: kept under their Path (default: the request's directory), removed
# when cleared (an empty value or Max-Age of 0 or less, as the agent clears).
store_cookies() {
	local line pair name value attr a key p maxage
	while IFS= read -r line; do
		line=${line%$'\r'}
		[[ ${line,,} == set-cookie:* ]] || continue
		line=${line#*:}
		line=${line# }
		pair=${line%%;*}
		name=${pair%%=*}
		value=${pair#*=}
		p="" maxage=""
		IFS=';' read -ra attr <<<"${line#"$pair"}"
		for a in "${attr[@]}"; do
			a=${a# }
			case ${a,,} in
			path=*) p=${a#*=} ;;
			max-age=*) maxage=${a#*=} ;;
			esac
		done
		if [[ $p != /* ]]; then # RFC 6265 §5.1.4's default-path
			p=${2%/*}
			p=${p:-/}
		fi
		key="$1 $p $name"
		if [[ -z $value || ($maxage =~ ^-?[0-9]+$ && $maxage -le 0) ]]; then
			unset 'jar[$key]'
		else
			jar[$key]=$value
		fi
	done <"$work/head"
}

# call METHOD URL [HEADER...] sends a request with the cookies that belong
# to it, and the body in $work/body-out when there is one; the answer's
# status goes to $status, its body to $work/body, its header to $work/head.
call() {
	local method=$1 url=$2
	shift 2
	split_url "$url"
	local cookies
	cookies=$(cookie_header "$host" "$upath")
	: >"$work/req-headers"
	[[ -n $cookies ]] && printf 'Cookie: %s\n' "$cookies" >>"$work/req-headers"
	local h
	for h in "$@"; do printf '%s\n' "$h" >>"$work/req-headers"; done
	local args=(-sS --max-time 15 -X "$method" -H "@$work/req-headers" -D "$work/head" -o "$work/body" -w '%{http_code}')
	if [[ -s $work/body-out ]]; then
		args+=(--data-binary "@$work/body-out")
	fi
	status=$(curl "${args[@]}" "$url") || fail "$method $url: curl failed"
	: >"$work/body-out"
	store_cookies "$host" "$upath"
}

# expect STATUS STEP fails unless the last answer had STATUS, with the
# answer's body (an error's code and message; never a token).
expect() {
	[[ $status == "$1" ]] && return 0
	local body
	body=$(head -c 2000 "$work/body" | tr -d '\r')
	if [[ $body =~ \<title\>([^<]*)\</title\> ]]; then # an HTML page: its title says enough
		body=${BASH_REMATCH[1]}
	fi
	fail "$2: HTTP $status, want $1: ${body:0:300}"
}

# json_string KEY prints the string value of "KEY" in the JSON answer.
json_string() {
	local body v
	body=$(<"$work/body")
	[[ $body =~ \"$1\"[[:space:]]*:[[:space:]]*\"(([^\"\\]|\\.)*)\" ]] || return 1
	v=${BASH_REMATCH[1]}
	v=${v//\\u0026/"&"}
	v=${v//\\u003c/<}
	v=${v//\\u003e/>}
	v=${v//\\u0027/\'}
	v=${v//\\\//\/}
	v=${v//\\\"/\"}
	v=${v//\\\\/\\}
	printf '%s' "$v"
}

# header NAME prints the last value of the answer's header field NAME.
header() {
	local line v=""
	while IFS= read -r line; do
		line=${line%$'\r'}
		if [[ ${line,,} == "${1,,}":* ]]; then
			v=${line#*:}
			v=${v# }
		fi
	done <"$work/head"
	printf '%s' "$v"
}

html_unescape() {
	local v=$1
	v=${v//&#43;/+}
	v=${v//&#34;/\"}
	v=${v//&#39;/\'}
	v=${v//&lt;/<}
	v=${v//&gt;/>}
	v=${v//&amp;/"&"}
	printf '%s' "$v"
}

origin=("Origin: $ORIGIN")
json=("Content-Type: application/json" "Accept: application/json")
csrf_name="x-$COOKIE_PREFIX-csrf"

echo "1. POST $AGENT_URL/login/start"
printf '{}' >"$work/body-out"
call POST "$AGENT_URL/login/start" "${origin[@]}" "${json[@]}"
expect 200 "login/start"
authz=$(json_string authorizationRequestUrl) || fail "login/start: no authorizationRequestUrl in the answer"
echo "   → the authorization request goes to ${authz%%\?*}"

echo "2. GET the authorization request: the development IdP's login page"
call GET "$authz" "Accept: text/html"
expect 200 "the login page"
page=$(<"$work/body")
[[ $page =~ \<form\ method=\"post\"\ action=\"([^\"]*)\"\> ]] || fail "the IdP's answer has no login form"
action=$(html_unescape "${BASH_REMATCH[1]}")
[[ $page =~ name=\"request_id\"\ value=\"([^\"]*)\" ]] || fail "the IdP's login form has no request_id"
request_id=$(html_unescape "${BASH_REMATCH[1]}")
if [[ $action == /* ]]; then
	[[ $authz =~ ^(https?://[^/?#]+) ]]
	action=${BASH_REMATCH[1]}$action
fi

echo "3. POST the login form as $DEMO_USER to $action"
printf 'request_id=%s&username=%s' "$request_id" "$DEMO_USER" >"$work/body-out"
call POST "$action" "Content-Type: application/x-www-form-urlencoded"
if [[ $status == 400 ]]; then
	fail "the IdP refused the login of \"$DEMO_USER\" (the demo users are alice, bob and carol)"
fi
expect 303 "the login form"
page_url=$(header Location)
[[ -n $page_url ]] || fail "the IdP sent no redirect"
[[ $page_url == *\?*error=* ]] && fail "the IdP answered with an error: ${page_url#*error=}"
echo "   → redirected back to ${page_url%%\?*} with a code"

echo "4. POST $AGENT_URL/login/end with that page URL"
esc=${page_url//\\/\\\\}
printf '{"pageUrl":"%s"}' "${esc//\"/\\\"}" >"$work/body-out"
call POST "$AGENT_URL/login/end" "${origin[@]}" "${json[@]}"
expect 200 "login/end"
grep -q '"isLoggedIn":true' "$work/body" || fail "login/end did not log in: $(<"$work/body")"
csrf=$(json_string csrf) || fail "login/end: no csrf in the answer"
kept=()
for k in "${!jar[@]}"; do
	read -r _ p n <<<"$k"
	kept+=("$n (Path=$p)")
done
echo "   → logged in; cookies kept: ${kept[*]}"

echo "5. GET $AGENT_URL/userInfo"
call GET "$AGENT_URL/userInfo" "${origin[@]}" "Accept: application/json"
expect 200 "userInfo"
echo "   $(<"$work/body")"

echo "6. GET $API_URL/hello through the OAuth Proxy"
call GET "$API_URL/hello" "${origin[@]}" "Accept: application/json"
expect 200 "the API"
echo "API answer: $(<"$work/body")"

echo "7. POST $API_URL/echo with the CSRF header"
printf '{"from":"walkthrough.sh"}' >"$work/body-out"
call POST "$API_URL/echo" "${origin[@]}" "${json[@]}" "$csrf_name: $csrf"
expect 200 "the API's echo"
echo "API answer: $(<"$work/body")"

echo "8. POST $AGENT_URL/refresh: new tokens, new cookies"
before=${jar[*]}
call POST "$AGENT_URL/refresh" "${origin[@]}" "${json[@]}" "$csrf_name: $csrf"
expect 204 "refresh"
[[ ${jar[*]} != "$before" ]] || fail "refresh wrote no new cookies"
call GET "$API_URL/hello" "${origin[@]}" "Accept: application/json"
expect 200 "the API after the refresh"
echo "   → 204; the API still answers for $(json_string subject)"

echo "9. POST $AGENT_URL/logout"
call POST "$AGENT_URL/logout" "${origin[@]}" "${json[@]}" "$csrf_name: $csrf"
expect 200 "logout"
end_session=$(json_string url) || fail "logout: no url in the answer"
echo "   → logged out; the SPA would now open the IdP's end-session URL ${end_session%%\?*}"
((${#jar[@]} == 0)) || fail "logout left cookies: ${!jar[*]}"

echo "10. GET $API_URL/hello again: the session is gone"
call GET "$API_URL/hello" "${origin[@]}" "Accept: application/json"
expect 401 "the API after logout"
echo "   → 401 $(<"$work/body")"
echo "walkthrough: done"
