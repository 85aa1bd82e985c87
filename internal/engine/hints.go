package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// hintWorkers bounds the signature checks of one lookup.
const hintWorkers = 8

// verifyHints checks, for every signed release found, its listing hints
// (the .manifest the available version is read from, and release.json)
// against its signed SHA256SUMS before they are shown or used: a release
// whose hints do not match is replaced by an error saying it is tampered.
// Unsigned releases, and those whose policy is none, pass unchanged
// (nothing can be checked); a release whose signature fails is left to the
// transaction, which refuses it with the full reason.
func (e *Engine) verifyHints(ctx context.Context, res map[string]source.Result) {
	e.initLookupSums()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, hintWorkers)
	for name, r := range res {
		rel := r.Release
		if r.Err != nil || rel == nil || !signed(rel) {
			continue
		}
		pol := e.policy(name).Signature
		if pol.Mode == trust.ModeNone || pol.Broken != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := e.checkReleaseHints(ctx, name, pol, rel); err != nil {
				mu.Lock()
				res[name] = source.Result{Err: err}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func signed(rel *source.Release) bool {
	_, sums := rel.Assets[trust.SumsFile]
	_, mini := rel.Assets[trust.MinisignFile]
	_, pgp := rel.Assets[trust.OpenPGPFile]
	return sums && (mini || pgp)
}

// checkReleaseHints verifies rel's SHA256SUMS under pol and compares the
// .manifest and release.json with it. A signature that does not verify is
// not decided here (the install refuses it, naming the keys); only a
// verified list that disagrees with a hint is an error: *trust.Error.
func (e *Engine) checkReleaseHints(ctx context.Context, name string, pol trust.Policy, rel *source.Release) error {
	sums, err := e.lookupSums(ctx, name, pol, rel)
	if err != nil || sums.List == nil {
		return nil
	}
	var te *trust.Error
	if err := e.compareHints(ctx, name, sums, rel); errors.As(err, &te) {
		return err
	}
	return nil // a hint that cannot be fetched: the install fetches it again and says why
}

// compareHints compares rel's .manifest and release.json with the
// verified SHA256SUMS; a mismatch is a *trust.Error saying the release is
// tampered, other errors come from fetching.
func (e *Engine) compareHints(ctx context.Context, name string, sums trust.Sums, rel *source.Release) error {
	if sums.List == nil {
		return nil
	}
	hints := []source.Asset{rel.Manifest}
	if a, ok := rel.Assets["release.json"]; ok {
		hints = append(hints, a)
	}
	for _, a := range hints {
		want, listed := sums.List[a.Name]
		if a.Name == "" || !listed {
			continue
		}
		b, err := e.Source.Fetch(ctx, a)
		if err != nil {
			return fmt.Errorf("fetching %s to check it against %s: %w", a.Name, trust.SumsFile, err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want) {
			return &trust.Error{Ext: name, Asset: a.Name, Found: []string{sums.Verdict.String()},
				Reason: fmt.Sprintf("sha256 %s, but the signed %s says %s: the release %s is tampered", got, trust.SumsFile, want, rel.Tag)}
		}
	}
	return nil
}

// lookupSumsMemo holds the SHA256SUMS verified while looking releases up,
// by release: the hint check and the rollout both need them, and a lookup
// verifies each release once. (The transaction verifies again, at the
// moment it installs.)
type lookupSumsMemo struct {
	mu sync.Mutex
	m  map[*source.Release]lookupSumsEntry
}

type lookupSumsEntry struct {
	sums trust.Sums
	err  error
}

// initLookupSums makes the memo; it is called before any goroutine uses it.
func (e *Engine) initLookupSums() {
	if e.sumsMemo == nil {
		e.sumsMemo = &lookupSumsMemo{m: map[*source.Release]lookupSumsEntry{}}
	}
}

// lookupSums is trust.VerifySums for rel under pol, once per release.
func (e *Engine) lookupSums(ctx context.Context, name string, pol trust.Policy, rel *source.Release) (trust.Sums, error) {
	memo := e.sumsMemo
	memo.mu.Lock()
	if got, ok := memo.m[rel]; ok {
		memo.mu.Unlock()
		return got.sums, got.err
	}
	memo.mu.Unlock()
	sums, err := trust.VerifySums(ctx, e.keyring(), pol, name, releaseAssets{e.Source, rel}, trust.SumsFile)
	memo.mu.Lock()
	memo.m[rel] = lookupSumsEntry{sums, err}
	memo.mu.Unlock()
	return sums, err
}
