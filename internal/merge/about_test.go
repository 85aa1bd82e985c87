package merge

import "testing"

// TestAboutImages: the lines systemd 252 and 257 print at debug level
// (quoted from TestWhyQuotesSystemd and the e2e agreement test) give the
// image's verdict, quoted by name or not, and nothing about other images.
func TestAboutImages(t *testing.T) {
	log := `Checking for /usr/lib/extension-release.d/extension-release.good: Success
Opened '/var/lib/extensions/good.raw' in O_RDONLY access mode, with O_DIRECT enabled.
Opened '/var/lib/extensions/os-release-file.raw' in O_RDONLY access mode, with O_DIRECT enabled.
Checking for /usr/lib/extension-release.d/extension-release.os-release-file: Success
Failed to read /etc/hostname file of image, ignoring: No such file or directory
Skipping PR_SET_MM, as we don't have privileges.
Mounting /proc/self/fd/3 (squashfs) on /run/systemd/sysext/extensions/os-release-file (MS_RDONLY|MS_NODEV "")...
Extension contains '/usr/lib/os-release', which is not allowed, refusing.
Extension 'sysext-old' is for OS '11', but deployed on top of '13'.
Opened '/var/lib/extensions/other.raw' in O_RDONLY access mode, with O_DIRECT enabled.
Extension contains '/usr/lib/os-release', which is not allowed, refusing.
Checking for /usr/lib/extension-release.d/extension-release.rel-empty: Success
Extension 'rel-empty' carries no release data, ignoring.
Hierarchy '/usr' is not a mount point, skipping.
`
	tests := []struct {
		images []string
		want   string
	}{
		{[]string{"os-release-file"}, "Extension contains '/usr/lib/os-release', which is not allowed, refusing."},
		{[]string{"sysext-old"}, "Extension 'sysext-old' is for OS '11', but deployed on top of '13'."},
		{[]string{"good"}, ""},
		{[]string{"rel-empty"}, "Extension 'rel-empty' carries no release data, ignoring."},
		{[]string{"sysext-old", "rel-empty"}, "Extension 'sysext-old' is for OS '11', but deployed on top of '13'.; Extension 'rel-empty' carries no release data, ignoring."},
		{[]string{"missing"}, ""},
	}
	for _, tt := range tests {
		if got := AboutImages(log, tt.images); got != tt.want {
			t.Errorf("AboutImages(%v) = %q, want %q", tt.images, got, tt.want)
		}
	}
}

// TestAboutImages262: systemd 262 prints, between the mount line and the
// verdict, a line naming the mount point in quotes; the verdict after it is
// still the image's.
func TestAboutImages262(t *testing.T) {
	log := `Mounting /proc/self/fd/4 (squashfs) on /run/systemd/sysext/extensions/os-release-file (MS_RDONLY|MS_NODEV "")...
Checking if '/run/systemd/sysext/extensions/os-release-file' is an extension tree
Extension contains '/usr/lib/os-release', which is not allowed, refusing.
Failed to mount image: No medium found
Opened /var/lib/extensions/other.raw in O_RDONLY access mode, with O_DIRECT enabled.
Checking if '/run/systemd/sysext/extensions/other' is an extension tree
`
	for _, tt := range []struct {
		images []string
		want   string
	}{
		{[]string{"os-release-file"}, "Extension contains '/usr/lib/os-release', which is not allowed, refusing."},
		{[]string{"other"}, ""},
		{[]string{"os-release"}, ""},
	} {
		if got := AboutImages(log, tt.images); got != tt.want {
			t.Errorf("AboutImages(%v) = %q, want %q", tt.images, got, tt.want)
		}
	}
}
