package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalImages(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name      string
		flag      string
		args      []string
		wantNames []string
		wantImgs  []localImage
		wantErr   string
	}{
		{"names only", "", []string{"hello", "foo"}, []string{"hello", "foo"}, nil, ""},
		{"file", "", []string{"./sysext-foo.raw", "hello"}, []string{"foo", "hello"}, []localImage{{path: abs("./sysext-foo.raw"), name: "foo"}}, ""},
		{"bare raw name", "", []string{"bar.raw"}, []string{"bar"}, []localImage{{path: abs("bar.raw"), name: "bar"}}, ""},
		{"--image", "/tmp/x.img", []string{"foo"}, []string{"foo"}, []localImage{{path: "/tmp/x.img", name: "foo"}}, ""},
		{"--image two names", "/tmp/x.img", []string{"foo", "bar"}, nil, nil, "exactly one"},
		{"--image with a file", "/tmp/x.img", []string{"./y.raw"}, nil, nil, "exactly one"},
		{"no name", "", []string{"./sysext-.raw"}, nil, nil, "cannot tell"},
		{"oci", "", []string{"oci://127.0.0.1:5000/fleet/sysext-hello:v1_trixie_amd64"}, []string{"hello"},
			[]localImage{{name: "hello", oci: "oci://127.0.0.1:5000/fleet/sysext-hello:v1_trixie_amd64"}}, ""},
		{"oci bad", "", []string{"oci://127.0.0.1:5000/Upper"}, nil, nil, "lower-case"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, imgs, err := localImages(tt.flag, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(names, " ") != strings.Join(tt.wantNames, " ") {
				t.Errorf("names = %q, want %q", names, tt.wantNames)
			}
			if len(imgs) != len(tt.wantImgs) {
				t.Fatalf("images = %v, want %v", imgs, tt.wantImgs)
			}
			for i := range imgs {
				if imgs[i] != tt.wantImgs[i] {
					t.Errorf("image %d = %+v, want %+v", i, imgs[i], tt.wantImgs[i])
				}
			}
		})
	}
}
