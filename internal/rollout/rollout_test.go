package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"testing"
)

// fleet returns n machine-ids shaped like /etc/machine-id (32 hex digits),
// derived deterministically so the figures in docs/fleet.md reproduce.
func fleet(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		s := sha256.Sum256([]byte(fmt.Sprintf("appliance-%d", i)))
		ids[i] = hex.EncodeToString(s[:16])
	}
	return ids
}

// TestFleetSimulation is the proof: 1,000 appliances at 10, 50 and
// 90 % take the release in a share within ±3 points of the percentage,
// and none changes its mind between two checks.
func TestFleetSimulation(t *testing.T) {
	ids := fleet(1000)
	for _, pct := range []int{10, 50, 90} {
		took := 0
		for _, id := range ids {
			first := Eligible(id, "vmware", "v1.2.0", pct)
			if second := Eligible(id, "vmware", "v1.2.0", pct); second != first {
				t.Fatalf("%s at %d%%: first check %v, second %v", id, pct, first, second)
			}
			if first {
				took++
			}
		}
		got := float64(took) / 10
		t.Logf("at %d%%: %d of 1000 appliances (%.1f %%)", pct, took, got)
		if math.Abs(got-float64(pct)) > 3 {
			t.Errorf("at %d%%: %.1f %% took it, want within ±3 points", pct, got)
		}
	}
}

// TestFleetManyReleases measures the spread over 500 releases of the same
// 1,000 appliances. Every appliance decides alone, so the share is
// binomial: σ = √(p(1−p)/1000), 1.6 points at 50 %, 0.95 at 10 and 90 %.
// The mean must sit on the percentage (no bias) and ±3 points must be
// missed no more often than the binomial allows (5.8 % of releases at
// 50 %, 0.2 % at 10 and 90 %), with a margin.
func TestFleetManyReleases(t *testing.T) {
	ids := fleet(1000)
	for _, c := range []struct {
		pct     int
		maxMiss float64 // share of releases outside ±3 points
	}{{10, 0.02}, {50, 0.10}, {90, 0.02}} {
		var sum, sq float64
		miss := 0
		const releases = 500
		for r := range releases {
			tag := fmt.Sprintf("v1.%d.0", r)
			took := 0
			for _, id := range ids {
				if Eligible(id, "vmware", tag, c.pct) {
					took++
				}
			}
			got := float64(took) / 10
			sum += got
			sq += got * got
			if math.Abs(got-float64(c.pct)) > 3 {
				miss++
			}
		}
		mean := sum / releases
		sd := math.Sqrt(sq/releases - mean*mean)
		t.Logf("at %d%%: mean %.2f %%, sd %.2f points, %d of %d releases outside ±3 points", c.pct, mean, sd, miss, releases)
		if math.Abs(mean-float64(c.pct)) > 0.5 {
			t.Errorf("at %d%%: mean share %.2f %%, want within 0.5 of it", c.pct, mean)
		}
		if float64(miss)/releases > c.maxMiss {
			t.Errorf("at %d%%: %d of %d releases outside ±3 points, want at most %.0f %%", c.pct, miss, releases, c.maxMiss*100)
		}
	}
}

// TestRaisingOnlyAdds: an appliance that took the release at 5 % still
// takes it at 25 % and 100 %; the rollout never takes it back from anyone.
func TestRaisingOnlyAdds(t *testing.T) {
	for _, id := range fleet(1000) {
		prev := false
		for _, pct := range []int{0, 5, 25, 50, 100} {
			now := Eligible(id, "vmware", "v2", pct)
			if prev && !now {
				t.Fatalf("%s: eligible below %d %% but not at it", id, pct)
			}
			prev = now
		}
	}
}

func TestBounds(t *testing.T) {
	for _, id := range fleet(200) {
		if Eligible(id, "x", "v1", 0) {
			t.Fatalf("%s eligible at 0 %%", id)
		}
		if Eligible(id, "x", "v1", -5) {
			t.Fatalf("%s eligible at -5 %%", id)
		}
		if !Eligible(id, "x", "v1", 100) || !Eligible(id, "x", "v1", 150) {
			t.Fatalf("%s not eligible at 100 %%", id)
		}
		if b := Bucket(id, "x", "v1"); b < 0 || b > 99 {
			t.Fatalf("bucket %d out of range", b)
		}
	}
}

// TestIndependentReleases: the first 10 % of one release is not the first
// 10 % of the next, nor of another extension (the tag and name are in the
// hash), so no appliance is always the canary.
func TestIndependentReleases(t *testing.T) {
	ids := fleet(1000)
	both, other := 0, 0
	for _, id := range ids {
		a := Eligible(id, "vmware", "v1", 10)
		if a && Eligible(id, "vmware", "v2", 10) {
			both++
		}
		if a && Eligible(id, "qemu-guest", "v1", 10) {
			other++
		}
	}
	t.Logf("of 1000 at 10 %%: %d in the first 10 %% of two releases, %d of two extensions", both, other)
	// Independent draws: about 1 % in both; identical ones would be 10 %.
	if both > 30 || other > 30 {
		t.Errorf("canaries overlap: %d in both releases, %d in both extensions (want about 10 of 1000)", both, other)
	}
}

// TestKnownBuckets pins the function: a change to it would move appliances
// between phases in the middle of a rollout.
func TestKnownBuckets(t *testing.T) {
	id := "0123456789abcdef0123456789abcdef"
	got := Bucket(id, "vmware", "v1.0.0")
	s := sha256.Sum256([]byte(id + "\x00vmware\x00v1.0.0"))
	want := int((uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
		uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])) % 100)
	if got != want {
		t.Fatalf("Bucket = %d, want %d", got, want)
	}
}

func BenchmarkEligible(b *testing.B) {
	ids := fleet(1000)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		Eligible(ids[i%len(ids)], "vmware", "v1.2.0", 25)
	}
}
