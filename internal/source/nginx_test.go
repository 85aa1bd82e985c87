package source

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nginxConf is the upload location of docs/sources.md, on a loopback
// port, with every path nginx writes under the test's directory.
const nginxConf = `daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
    log_format upload '$request_method $uri $status';
    access_log %[1]s/access.log upload;
    client_body_temp_path %[1]s/srv/.tmp;
    proxy_temp_path %[1]s/tmp;
    fastcgi_temp_path %[1]s/tmp;
    uwsgi_temp_path %[1]s/tmp;
    scgi_temp_path %[1]s/tmp;
    server {
        listen %[2]s;
        location /mirror/ {
            root %[1]s/srv;
            dav_methods PUT MKCOL;
            create_full_put_path on;
            dav_access all:r;
            client_max_body_size 2g;
            limit_except GET HEAD {
                auth_basic "sysext mirror upload";
                auth_basic_user_file %[1]s/htpasswd;
            }
        }
    }
}
`

// startNginx runs Debian's nginx with nginxConf and returns its address
// and directory. It skips (loudly) when nginx is not installed.
func startNginx(t *testing.T) (addr, dir string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("SKIP: nginx not installed (apt-get install nginx): the upload target is not tested against a real nginx")
		}
	}
	dir = t.TempDir()
	for _, d := range []string{"srv/.tmp", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("ci:{PLAIN}pa55word\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, addr), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, dir
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUploadToNginx: the nginx location of docs/sources.md takes an
// upload with basic auth, serves it as a mirror to anyone, refuses a wrong
// password, and a second upload puts only the index.
func TestUploadToNginx(t *testing.T) {
	addr, dir := startNginx(t)
	rel, src := mirrorRelease(t, helloFiles())
	puts := func() []string {
		b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
		var out []string
		for l := range strings.Lines(string(b)) {
			if strings.HasPrefix(l, "PUT ") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return out
	}

	bad, err := NewUploader("http://ci:Wr0ng@"+addr+"/mirror", "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "Wr0ng") {
		t.Fatalf("wrong password: %v, want a 401 without the password", err)
	}
	ix := filepath.Join(dir, "srv", "mirror", "sysext-hello", "index.json")
	if _, err := os.Stat(ix); !os.IsNotExist(err) {
		t.Fatalf("index after a refused upload (stat: %v)", err)
	}

	up, err := NewUploader("http://ci:pa55word@"+addr+"/mirror", "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("upload to nginx: %v", err)
	}
	first := puts()
	if len(first) != 5 || first[len(first)-1] != "PUT /mirror/sysext-hello/index.json 201" {
		t.Fatalf("PUTs %q, want one refused, 3 assets, then the index", first)
	}
	m := NewMirror(HTTPOptions{}, "")
	got := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "http://" + addr + "/mirror"}}, trixie)["hello"]
	if got.Err != nil || got.Release.Version != "1.0-1" {
		t.Fatalf("reading the uploaded mirror without credentials: %+v", got)
	}
	if _, err := m.Download(t.Context(), got.Release.Image, t.TempDir()); err != nil {
		t.Fatalf("downloading from nginx: %v", err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatal(err)
	}
	if again := puts()[len(first):]; len(again) != 1 || again[0] != "PUT /mirror/sysext-hello/index.json 204" {
		t.Errorf("second upload PUTs %q, want only the index (204: replaced)", again)
	}
}
