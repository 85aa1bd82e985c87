package rootfs

// Key directories for signed releases (internal/trust): the vendor's, shipped
// in the read-only image, and the local administrator's.
const (
	VendorKeysDir = "/usr/share/sysextd/keys.d"
	LocalKeysDir  = "/etc/sysextd/keys.d"
)
