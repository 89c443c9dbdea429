package devidp

// verifyIDTokenHint checks an id_token_hint and returns its audience and
// sid. An expired ID token is accepted (RP-Initiated Logout 1.0 §2): the
// user may log out long after signing in.
func (s *Server) verifyIDTokenHint(raw string) (aud []string, sid string, err error) {
	var extra struct {
		SessionID string `json:"sid"`
	}
	c, err := s.op.Verify(raw, &extra)
	if err != nil {
		return nil, "", err
	}
	return c.Audience, extra.SessionID, nil
}
