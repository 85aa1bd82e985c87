package fakegithub

import (
	"maps"
	"time"
)

// Fault is a misbehaviour the fake can be told to show.
type Fault int

// Faults. Rate limits and 500 are meant for the API; WrongBytes only applies
// to downloads. Stall never sends a status line; StallBody sends the headers
// and half the body, then nothing.
const (
	FaultNone        Fault = iota
	FaultRateLimit         // 403 with X-RateLimit-Remaining: 0 and the reset time
	FaultTooMany           // 429 with X-RateLimit-Remaining: 0 and the reset time
	FaultServerError       // 500
	FaultCutShort          // declares Content-Length, sends half, closes the connection
	FaultStall             // accepts the request and never answers until it is cancelled
	FaultStallBody         // answers the headers and half the body, then stalls
	FaultWrongBytes        // download bodies have the right length but wrong content
	FaultBare429           // downloads: a bare 429 with Retry-After, no rate-limit headers
	FaultDrip              // downloads: headers, then one byte every DripEvery (default 2 s)
)

// Faults is the fault configuration in force. Latency delays every answer.
type Faults struct {
	Latency  time.Duration
	API      Fault // applies to /repos/... requests
	Download Fault // applies to asset bodies
	// RateLimitReset is the reset time sent in X-RateLimit-Reset; zero means
	// one hour after the server was made.
	RateLimitReset time.Time
	// DripEvery is the pause between bytes of FaultDrip; default 2 s.
	DripEvery time.Duration
}

func (s *Server) dripEvery() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.DripEvery > 0 {
		return s.faults.DripEvery
	}
	return 2 * time.Second
}

// SetFaults replaces the whole fault configuration.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetLatency delays every answer, API and download, by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Latency = d
}

// SetAPIFault makes every API answer show f until changed.
func (s *Server) SetAPIFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.API = f
}

// SetDownloadFault makes every asset body show f until changed.
func (s *Server) SetDownloadFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.Download = f
}

// Stats counts what the fake answered since it was made or ResetStats.
type Stats struct {
	API         int            // requests under /repos/
	NotModified int            // 304 answers
	Downloads   int            // asset bodies served (or attempted with a fault)
	APIByRepo   map[string]int // API requests per "owner/repo"
}

// Request records one request the fake received.
type Request struct {
	Method        string
	Host          string // the Host header, e.g. "127.0.0.1:4242"
	Path          string
	Authorization string // the Authorization header as received, "" when absent
	Status        int
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.APIByRepo = maps.Clone(s.stats.APIByRepo)
	return st
}

// ResetStats zeroes the counters and forgets the recorded requests.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{APIByRepo: map[string]int{}}
	s.requests = nil
}

// Requests returns every request received since the last ResetStats, in
// order of completion.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}
