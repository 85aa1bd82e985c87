package rules

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// VirtRule: virt_env = [ "NAME", ... ].
type VirtRule struct {
	VirtEnv []string `toml:"virt_env" json:"virt_env,omitempty"`
}

// VirtFacts are the virtualization systemd detects ("none" on bare metal).
type VirtFacts struct {
	Virtualization string `json:"virtualization"`
}

// VirtNames are the answers of systemd-detect-virt --list (systemd 252 to
// 257), the only values a virt_env rule can ever match. A name outside the
// list is a warning, not an error: a newer systemd may add one.
var VirtNames = []string{
	"none", "kvm", "amazon", "qemu", "bochs", "xen", "uml", "vmware", "oracle", "microsoft", "zvm",
	"parallels", "bhyve", "qnx", "acrn", "powervm", "apple", "sre", "google", "vm-other",
	"systemd-nspawn", "lxc-libvirt", "lxc", "openvz", "docker", "podman", "rkt", "wsl", "proot",
	"pouch", "container-other",
}

//sysextd:rulekind 4 VirtRule VirtFacts
var virtKind = Kind{
	Key:      "virt_env",
	FromHost: true,
	Man: `\fBvirt_env\fP = [ "\fINAME\fP", ... ]
Matches the virtualization systemd detects, as
.B systemd-detect-virt
prints it: none, kvm, amazon, qemu, bochs, xen, uml, vmware, oracle,
microsoft, zvm, parallels, bhyve, qnx, acrn, powervm, apple, sre, google,
vm-other, systemd-nspawn, lxc-libvirt, lxc, openvz, docker, podman, rkt, wsl,
proot, pouch, container-other.
Any other name draws a warning with the closest spelling.
`,
	values: func(r *Rules) []string { return r.VirtEnv },
	validate: func(v string) (string, bool) {
		if strings.TrimSpace(v) == "" {
			return "empty rule", false
		}
		if msg := checkVirt(v); msg != "" {
			return msg, true
		}
		return "", false
	},
	gather: func(ctx context.Context, _ rootfs.Root, o Options, f *Facts) error {
		f.Virtualization = detectVirt(ctx, o.Virt, o.Logger)
		return nil
	},
	loaded: func(f *Facts) {
		if f.Virtualization == "" {
			f.Virtualization = "none"
		}
	},
	match: func(pattern string, f *Facts) Check {
		v := strings.TrimSpace(pattern)
		return Check{Rule: "virt_env", Pattern: v, Matched: v != "" && v == f.Virtualization, Fact: f.Virtualization}
	},
	show: func(f *Facts, hostNote string) []string {
		virt := dash(f.Virtualization)
		if hostNote != "" {
			virt += "  (" + hostNote + ")"
		}
		return []string{"virtualization\t" + virt}
	},
	showRank: 0,
}

// checkVirt returns a warning for a virt_env value systemd never reports.
func checkVirt(v string) string {
	for _, n := range VirtNames {
		if v == n {
			return ""
		}
	}
	msg := fmt.Sprintf("%q is not a virtualization systemd-detect-virt reports, so this rule never matches", v)
	if s := Closest(strings.ToLower(strings.TrimSpace(v)), VirtNames); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg
}

// virtTimeout bounds every virtualization probe so a hung D-Bus or binary
// can never hang a run.
const virtTimeout = 3 * time.Second

func detectVirt(ctx context.Context, detectors []VirtDetector, log *slog.Logger) string {
	if len(detectors) == 0 {
		detectors = []VirtDetector{DetectVirtCommand}
	}
	for _, d := range detectors {
		cctx, cancel := context.WithTimeout(ctx, virtTimeout)
		v, err := d(cctx)
		cancel()
		if err != nil {
			log.Debug("virtualization probe failed", "err", err)
			continue
		}
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return "none"
}

// DetectVirtCommand runs systemd-detect-virt. Its exit status is 1 when it
// prints "none", which is an answer, not a failure.
func DetectVirtCommand(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "systemd-detect-virt").Output()
	v := strings.TrimSpace(string(out))
	if v != "" {
		return v, nil
	}
	if err != nil {
		return "", fmt.Errorf("running systemd-detect-virt: %w", err)
	}
	return "none", nil
}
