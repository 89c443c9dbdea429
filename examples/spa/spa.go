// Package spa embeds the demo Single Page App's static files (index.html,
// app.js, oauth-agent-client.js, style.css), so that the development stack
// serves them from any working directory. The SPA itself is plain modern
// JavaScript with no build step.
package spa

import "embed"

// Files are the SPA's static files.
//
//go:embed index.html app.js oauth-agent-client.js style.css
var Files embed.FS
