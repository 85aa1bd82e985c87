// Package failpoint lets the reliability tests kill the process at a named
// moment. In a normal build Hit does nothing and costs nothing; a binary
// built with -tags failpoints kills itself with SIGKILL when Hit is called
// with the name that $SYSEXTD_FAILPOINT holds (see docs/RELIABILITY.md).
//
// Names are "PHASE:before" and "PHASE:after" for the transaction's phases
// (download, verify, place, activate, units, action, commit), prefixed with
// the operation ("install:", "update:", "remove:"), plus "refresh:running"
// while systemd-sysext refresh runs, and the steps of a probation and of
// boot assessment ("probation:check:before", "probation:rollback:before",
// "probation:rollback:after", "probation:pass:before",
// "boot:count:before", "boot:count:after"; docs/probation.md).
package failpoint

// Env is the variable a failpoints build reads.
const Env = "SYSEXTD_FAILPOINT"
