package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/payload"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/shadow"
	"github.com/spamtagger/sysextd/internal/store"
)

// ErrNotInspectable: what inspect was given is neither an installed
// extension nor an image file.
var ErrNotInspectable = errors.New("neither an installed extension nor an image file")

// Inspection is what `sysextctl inspect` reports of an image: the
// shadowing report, and the image's etc/ and var/ payload with what the
// default payload policy refuses (a manifest entry's allow_etc may let
// some through).
type Inspection struct {
	shadow.Report
	Payload        []PayloadEntry    `json:"payload"`
	PayloadRefused []payload.Refusal `json:"payload_refused"`
	// Enables are the image's own units its enablement links name.
	Enables []string `json:"enables,omitempty"`
}

// PayloadEntry is one file of an image's payload.
type PayloadEntry struct {
	Path string `json:"path"`
	Mode string `json:"mode"`
}

// Inspect reads an installed extension (arg is its name) or an image file
// (arg is a path) under root without mounting it. It needs no engine: no
// facts, no manifests, no network.
func Inspect(ctx context.Context, root rootfs.Root, arg string) (*Inspection, error) {
	s := store.Store{Root: root}
	st, err := s.LoadState()
	if err != nil {
		return nil, err
	}
	img := ""
	rec := st.Extensions[arg]
	if rec != nil && !strings.Contains(arg, "/") {
		img = s.ImagePath(rec.Image)
	} else if fi, err := os.Stat(arg); err == nil && fi.Mode().IsRegular() {
		img = arg
	} else {
		return nil, fmt.Errorf("inspect %s: %w", arg, ErrNotInspectable)
	}
	installed, err := shadow.Installed(s)
	if err != nil {
		return nil, err
	}
	rep, err := shadow.Check(ctx, root, img, installed)
	if err != nil {
		return nil, err
	}
	res := &Inspection{Report: rep, Payload: []PayloadEntry{}, PayloadRefused: []payload.Refusal{}}
	var prev []payload.File
	if rec != nil {
		prev = rec.Payload
	}
	if err := res.addPayload(ctx, root, img, prev); err != nil {
		return nil, err
	}
	return res, nil
}

func (in *Inspection) addPayload(ctx context.Context, root rootfs.Root, img string, prev []payload.File) error {
	info, err := image.InspectContext(ctx, img)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", img, err)
	}
	files, err := payload.Read(ctx, img)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", img, err)
	}
	v := payload.Check(files, nil, info.UnitFiles, payload.HostOf(root, prev))
	for _, f := range v.Files {
		if !f.Mode.IsDir() {
			in.Payload = append(in.Payload, PayloadEntry{Path: f.Path, Mode: f.Mode.String()})
		}
	}
	in.PayloadRefused = append(in.PayloadRefused, v.Refused...)
	in.Enables = v.Enable
	return nil
}
