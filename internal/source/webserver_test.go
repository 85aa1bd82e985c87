package source

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The upload target against real web servers, configured as
// docs/sources.md says: Debian's nginx (dav_methods PUT,
// create_full_put_path) and Apache (mod_dav, which wants MKCOL). Each
// test skips loudly when its server is not installed.

// nginxConf is the upload location of docs/sources.md, on a loopback
// port, with every path nginx writes under the test's directory.
const nginxConf = `daemon off;
master_process off;
pid %[1]s/run.pid;
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
        # The same files, for reading with a login only (auth.conf).
        location /private/ {
            alias %[1]s/srv/mirror/;
            auth_basic "sysext mirror";
            auth_basic_user_file %[1]s/htpasswd;
        }
    }
}
`

// apacheConf: mod_dav on /mirror, writes need basic auth.
const apacheConf = `ServerRoot %[1]s
ServerName localhost
Listen %[2]s
PidFile %[1]s/run.pid
DefaultRuntimeDir %[1]s/tmp
Mutex file:%[1]s/tmp default
ErrorLog %[1]s/error.log
LoadModule mpm_event_module %[3]s/mod_mpm_event.so
LoadModule authn_core_module %[3]s/mod_authn_core.so
LoadModule authn_file_module %[3]s/mod_authn_file.so
LoadModule authz_core_module %[3]s/mod_authz_core.so
LoadModule authz_user_module %[3]s/mod_authz_user.so
LoadModule auth_basic_module %[3]s/mod_auth_basic.so
LoadModule dav_module %[3]s/mod_dav.so
LoadModule dav_fs_module %[3]s/mod_dav_fs.so
LogFormat "%%m %%U %%>s" upload
CustomLog %[1]s/access.log upload
DocumentRoot %[1]s/srv
DavLockDB %[1]s/tmp/davlock
<Directory %[1]s/srv/mirror>
    Dav On
    <LimitExcept GET HEAD OPTIONS>
        AuthType Basic
        AuthName "sysext mirror upload"
        AuthUserFile %[1]s/htpasswd
        Require valid-user
    </LimitExcept>
</Directory>
`

// realServer is a web server started for a test in dir (files under
// dir/srv, its access log at dir/access.log, one "METHOD PATH STATUS"
// line per request) listening on addr.
type realServer struct{ addr, dir string }

// startServer writes conf (formatted with dir, addr and extra) and runs
// argv... -c/-f it, waiting until it listens. htpasswd is the line for
// user ci with password pa55word.
func startServer(t *testing.T, bin, htpasswd, conf string, argv func(conf string) []string, extra ...any) realServer {
	t.Helper()
	// World-writable, in case a server's workers drop root (Apache's User).
	dir, err := os.MkdirTemp("", "sysextd-webserver-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"", "srv", "srv/.tmp", "srv/mirror", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(cf, fmt.Appendf(nil, conf, append([]any{dir, addr}, extra...)...), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, argv(cf)...)
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: Apache's workers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return realServer{addr: addr, dir: dir}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			o, _ := os.ReadFile(out.Name())
			t.Fatalf("%s did not listen on %s: %v\n%s%s", bin, addr, err, b, o)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lookPath finds a server binary, or skips the test saying what to install.
func lookPath(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	t.Skipf("SKIP: %s not installed (apt-get install %s): the upload target is not tested against it", name, pkg)
	return ""
}

// waitRequests returns the access log's lines of method once until says
// they are complete, or after 5 s: a server writes its log line after it
// has answered (Apache in its logging phase), so a client can be faster.
func (s realServer) waitRequests(method string, until func([]string) bool) []string {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if r := s.requests(method); until(r) || time.Now().After(deadline) {
			return r
		}
	}
}

// requests returns the access log's lines of method.
func (s realServer) requests(method string) []string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "access.log"))
	var out []string
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, method+" ") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// checkUpload: with a wrong password the server refuses (401, no index,
// no password in the error); with the right one the release is uploaded,
// the index last, and served as a mirror to anyone; a second upload puts
// only the index.
func checkUpload(t *testing.T, s realServer) {
	rel, src := mirrorRelease(t, helloFiles())
	bad, err := NewUploader("http://ci:Wr0ng@"+s.addr+"/mirror", "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.AddRelease(t.Context(), "sysext-hello", rel, src, published, false)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "Wr0ng") {
		t.Fatalf("wrong password: %v, want a 401 without the password", err)
	}
	ix := filepath.Join(s.dir, "srv", "mirror", "sysext-hello", "index.json")
	if _, err := os.Stat(ix); !os.IsNotExist(err) {
		t.Fatalf("index after a refused upload (stat: %v)", err)
	}

	up, err := NewUploader("http://ci:pa55word@"+s.addr+"/mirror", "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("upload: %v", err)
	}
	puts := s.waitRequests("PUT", func(r []string) bool {
		return len(r) > 0 && strings.HasPrefix(r[len(r)-1], "PUT /mirror/sysext-hello/index.json ")
	})
	var created []string
	for _, p := range puts {
		if strings.HasSuffix(p, " 201") {
			created = append(created, strings.TrimSuffix(p, " 201"))
		}
	}
	want := []string{
		"PUT /mirror/sysext-hello/v1.0-1/SHA256SUMS",
		"PUT /mirror/sysext-hello/v1.0-1/sysext-hello_trixie_amd64.manifest",
		"PUT /mirror/sysext-hello/v1.0-1/sysext-hello_trixie_amd64.squashfs",
		"PUT /mirror/sysext-hello/index.json",
	}
	if !slices.Equal(created, want) {
		t.Fatalf("PUTs %q, want %q created, the index last", puts, want)
	}
	m := NewMirror(HTTPOptions{}, "")
	got := m.LatestAll(t.Context(), []Request{{Name: "hello", URL: "http://" + s.addr + "/mirror"}}, trixie)["hello"]
	if got.Err != nil || got.Release.Version != "1.0-1" {
		t.Fatalf("reading the uploaded mirror without credentials: %+v", got)
	}
	if _, err := m.Download(t.Context(), got.Release.Image, t.TempDir()); err != nil {
		t.Fatalf("downloading from the uploaded mirror: %v", err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatal(err)
	}
	if again := s.waitRequests("PUT", func(r []string) bool { return len(r) > len(puts) })[len(puts):]; len(again) != 1 || again[0] != "PUT /mirror/sysext-hello/index.json 204" {
		t.Errorf("second upload PUTs %q, want only the index (204: replaced)", again)
	}
}

func TestUploadToNginx(t *testing.T) {
	bin := lookPath(t, "nginx", "nginx")
	s := startServer(t, bin, "ci:{PLAIN}pa55word", nginxConf, func(conf string) []string {
		return []string{"-p", filepath.Dir(conf), "-c", conf, "-e", filepath.Join(filepath.Dir(conf), "error.log")}
	})
	checkUpload(t, s)
}

// TestMirrorLoginNginx: a mirror nginx serves only with a login is read
// with the login from an auth.conf, and refused without it.
func TestMirrorLoginNginx(t *testing.T) {
	bin := lookPath(t, "nginx", "nginx")
	s := startServer(t, bin, "ci:{PLAIN}pa55word", nginxConf, func(conf string) []string {
		return []string{"-p", filepath.Dir(conf), "-c", conf, "-e", filepath.Join(filepath.Dir(conf), "error.log")}
	})
	rel, src := mirrorRelease(t, helloFiles())
	up, err := NewUploader("http://ci:pa55word@"+s.addr+"/mirror", "", HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.AddRelease(t.Context(), "sysext-hello", rel, src, published, false); err != nil {
		t.Fatalf("upload: %v", err)
	}
	checkMirrorLogin(t, "http://"+s.addr+"/private", "ci", "pa55word")
}

// TestUploadToApache: mod_dav answers a PUT into a missing directory 409;
// the uploader creates it with MKCOL.
func TestUploadToApache(t *testing.T) {
	bin := lookPath(t, "apache2", "apache2-bin")
	modules := filepath.Join(filepath.Dir(filepath.Dir(bin)), "lib", "apache2", "modules")
	sum := sha1.Sum([]byte("pa55word"))
	s := startServer(t, bin, "ci:{SHA}"+base64.StdEncoding.EncodeToString(sum[:]), apacheConf, func(conf string) []string {
		return []string{"-f", conf, "-DFOREGROUND"}
	}, modules)
	checkUpload(t, s)
	if mk := s.requests("MKCOL"); len(mk) == 0 {
		t.Error("no MKCOL: the 409 path was not taken")
	}
}
