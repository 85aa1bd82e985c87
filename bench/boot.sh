#!/usr/bin/env bash
# bench/boot.sh: boot time of sysextd against systemd-sysext.service alone
# (docs/PERFORMANCE.md, "Boot"). NOT part of CI. Needs root and the e2e
# harness (systemd-nspawn, a cached trixie base: docs/e2e.md).
#
#	bench/boot.sh [N]      (N boots of each kind, alternating; default 5)
#
# On a booted trixie with 12 installed images (4 ship a unit), it alternates
# (a) a boot with only systemd-sysext.service merging (sysextd disabled),
# timed from the unit's InactiveExitTimestampMonotonic to its
# ActiveEnterTimestampMonotonic, and (b) a boot with sysextd merging
# (systemd-sysext.service disabled), timed the same way on sysextd.service,
# which becomes active at READY=1: images merged and their units started.
# It prints each pair and the ratio b/a (median and range).
set -euo pipefail
cd "$(dirname "$0")/.."
SYSEXTD_BENCH_BOOTS=${1:-5} exec go test -tags e2e -count=1 -timeout 30m -run '^TestBootTimeBench$' -v ./e2e/ 2>&1 |
	grep -E 'MEASURED|^(---|ok|FAIL|PASS)|Error|error'
