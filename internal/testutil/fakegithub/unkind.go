package fakegithub

import (
	"net/http"
	"strconv"
	"time"
)

// The ways real GitHub is unkind to a client, switched on per test.
//
//   - Quota: every API request costs one of the remaining quota (SetQuota;
//     GitHub's real figures are 60 unauthenticated and 5000 with a token per
//     hour; the default is large so that benchmarks are not limited); a 304
//     costs one too unless the request was authenticated. At zero the API
//     answers the primary rate limit.
//   - Weak ETags: release ETags are W/"..." and change whenever an asset
//     is downloaded, because download_count is in the body.
//   - make_latest: a release published with MakeLatest "false" is never
//     latest; the newest with MakeLatest "true" is, whatever its date.
//   - Drafts are listed only to authenticated clients, like GitHub shows
//     them only to users with push access.
//   - A CDN on another host (SetDownloadHost) refuses requests that carry
//     Authorization with a 400, like S3 refuses a second auth mechanism.
//   - Private repositories (SetPrivate) answer 404 to unauthenticated API
//     requests, and their browser URLs 404 always (no session cookie).
//   - Secondary limits (SetSecondaryLimit) answer 403 with Retry-After and
//     the secondary-limit message; FaultTooMany on downloads is a bare 429
//     with Retry-After.
//   - Renames (Rename) answer 301 to the new name for every API request
//     about the old one.

// SetPrivate makes owner/repo private (or public again).
func (s *Server) SetPrivate(owner, repo string, private bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.private == nil {
		s.private = map[string]bool{}
	}
	s.private[owner+"/"+repo] = private
}

// Rename moves owner/repo to newOwner/newRepo: its releases move, and API
// requests for the old name answer 301 to the new one.
func (s *Server) Rename(owner, repo, newOwner, newRepo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := owner+"/"+repo, newOwner+"/"+newRepo
	s.repos[to] = s.repos[from]
	delete(s.repos, from)
	for _, r := range s.repos[to] {
		for _, a := range r.assets {
			a.owner, a.repo = newOwner, newRepo
		}
	}
	if s.renames == nil {
		s.renames = map[string]string{}
	}
	s.renames[from] = to
}

// SetSecondaryLimit makes the next n API requests answer a secondary rate
// limit with Retry-After: retryAfter.
func (s *Server) SetSecondaryLimit(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary, s.retryAfter = n, retryAfter
}

// SetQuota sets the remaining API quota for unauthenticated and
// authenticated clients (default 1,000,000 each; GitHub: 60 and 5000).
func (s *Server) SetQuota(unauthenticated, authenticated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = [2]int{unauthenticated, authenticated}
	s.quotaSet = true
}

// Quota returns the remaining quota: unauthenticated, authenticated.
func (s *Server) Quota() (unauthenticated, authenticated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initQuota()
	return s.quota[0], s.quota[1]
}

// initQuota sets the default quota once. Caller holds s.mu.
func (s *Server) initQuota() {
	if !s.quotaSet {
		s.quota = [2]int{1_000_000, 1_000_000}
		s.quotaSet = true
	}
}

// spend charges one request to the quota and reports whether any was
// left. Caller holds s.mu.
func (s *Server) spend(authed bool) (remaining int, ok bool) {
	s.initQuota()
	i := 0
	if authed {
		i = 1
	}
	if s.quota[i] <= 0 {
		return 0, false
	}
	s.quota[i]--
	return s.quota[i], true
}

// refund gives back a request that GitHub does not charge (an
// authenticated 304). Caller holds s.mu.
func (s *Server) refund(authed bool) {
	if authed {
		s.quota[1]++
	}
}

// secondaryLimit writes a secondary-limit answer when one is due.
func (s *Server) secondaryLimit(w http.ResponseWriter) bool {
	s.mu.Lock()
	due := s.secondary > 0
	if due {
		s.secondary--
	}
	ra := s.retryAfter
	s.mu.Unlock()
	if !due {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(ra/time.Second)))
	writeJSON(w, http.StatusForbidden, map[string]string{
		"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
		"documentation_url": rateLimitDoc + "#about-secondary-rate-limits",
	})
	return true
}
