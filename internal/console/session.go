package console

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxSessions bounds the console sessions kept in memory: past it, signing
// in drops the session idle longest, so a flood of sign-ins costs bounded
// memory and signs out nobody who is active.
const maxSessions = 10_000

// session is one signed-in operator's console session. The server keeps
// it; the browser holds only its random ID, in an HttpOnly cookie.
type session struct {
	// digest is the SHA-256 of the operator's token: the operator is
	// looked up by it on every request, so a token removed or given
	// another role takes effect at once. The secret itself is not kept.
	digest [sha256.Size]byte
	// csrf is the token every form of the session carries.
	csrf string
	// seen is when the session was last used; idle past the idle timeout,
	// it ends.
	seen time.Time
	// flash is a message for the next page the session shows, once: the
	// outcome of a change, after its redirect.
	flash string
}

// sessions holds the console sessions of this process, keyed by the
// SHA-256 of their IDs, so the map is never searched with a secret.
type sessions struct {
	idle time.Duration
	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session
}

func newSessions(idle time.Duration) *sessions {
	return &sessions{idle: idle, byID: map[[sha256.Size]byte]*session{}}
}

// start begins a session for the token whose digest is given and returns
// its ID, for the cookie, and its CSRF token.
func (s *sessions) start(digest [sha256.Size]byte, now time.Time) (id, csrf string) {
	id, csrf = newSecret(), newSecret()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		s.evict(now)
	}
	s.byID[sha256.Sum256([]byte(id))] = &session{digest: digest, csrf: csrf, seen: now}
	return id, csrf
}

// evict drops the expired sessions, or, when none has expired, the one
// idle longest. s.mu is held.
func (s *sessions) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestSeen time.Time
	for k, sess := range s.byID {
		switch {
		case now.Sub(sess.seen) >= s.idle:
			delete(s.byID, k)
		case oldestSeen.IsZero() || sess.seen.Before(oldestSeen):
			oldest, oldestSeen = k, sess.seen
		}
	}
	if len(s.byID) >= maxSessions {
		delete(s.byID, oldest)
	}
}

// use returns a copy of session id and marks it used now, or false when
// there is no such session or it has been idle too long (it then ends).
// The copy carries the flash message, which takeFlash takes: it is shown
// once.
func (s *sessions) use(id string, now time.Time, takeFlash bool) (session, bool) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[k]
	if !ok {
		return session{}, false
	}
	if now.Sub(sess.seen) >= s.idle {
		delete(s.byID, k)
		return session{}, false
	}
	sess.seen = now
	out := *sess
	if takeFlash {
		sess.flash = ""
	}
	return out, true
}

// flash leaves msg for the next page session id shows.
func (s *sessions) flash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byID[sha256.Sum256([]byte(id))]; ok {
		sess.flash = msg
	}
}

// end ends session id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, sha256.Sum256([]byte(id)))
}
