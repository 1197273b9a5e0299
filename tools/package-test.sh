#!/usr/bin/env bash
# Builds cnetd's Debian packages from debian/ and tests them as installed, without installing them
# on this machine:
#   1. dpkg-buildpackage (source + binaries) at the package's own flags (-O2, hardening=+all) with
#      warnings as errors (CNETD_WERROR=1, see debian/rules): CI's optimized -Werror build;
#   2. lintian on the result: any error or warning fails (overrides need a comment saying why);
#   3. every path of both .debs (dpkg-deb -c) against the expected list, modes, the conffile,
#      hardening of the binaries (PIE, relro, bind-now), the maintainer scripts' unit handling;
#   4. dpkg -x into a staging root, shown at the real paths (/usr, /etc) by read-only overlay mounts
#      inside a private mount+network+pid namespace, where the installed binaries run: cnetd
#      --version, netctl --help, cnetd-cni VERSION, systemd-analyze verify of the installed units,
#      the installed tmpfiles.d/sysusers.d entries, then cnetd started with the unit's ExecStart and
#      the installed config, a network created, a namespace connected and pinged, everything
#      removed and cnetd stopped; last, the postrm: remove keeps /var/lib/cnetd, purge removes it.
# Nothing outside the namespace changes: the overlays are read-only and /run, /var/lib are tmpfs.
#
#   sudo tools/package-test.sh        # tests/run.sh runs it as its "package" stage
#   PKG_REUSE=1 tools/package-test.sh # steps 2-4 on the packages of the last run (no rebuild)
#   tools/package-test.sh --build-only # step 1 alone (tests/run.sh builds the packages at idle
#                                      # priority while the suites run, then tests them)
#
# Work and results in build-pkg/ (the .debs: build-pkg/cnetd_*.deb). Needs root (namespaces, mounts)
# and the packages of tools/install-deps.sh (debhelper, dpkg-dev, lintian).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/build-pkg

in_sandbox=0 build_only=0
case "${1:-}" in
  --in-sandbox) in_sandbox=1 ;;
  --build-only) build_only=1 ;;
  "") ;;
  *) echo "usage: tools/package-test.sh [--build-only]" >&2; exit 2 ;;
esac

failures=0
# (Pipelines end in grep -c, not grep -q: -q exits at the first match and the writer's SIGPIPE
# fails the pipeline under pipefail.)
fail() { echo "package-test: FAIL: $*" >&2; failures=$((failures + 1)); }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" meson.build)

# --- 1. Build ---------------------------------------------------------------------------------------
# In a copy of the tracked (and new, not ignored) files at a fixed path, so the tree stays clean
# (dpkg-buildpackage writes debian/ files, its build dir and ../*.deb) and ccache finds its entries.
build_packages() {
    local src=$work/cnetd-$version
    rm -rf "$work" && mkdir -p "$src"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
            tar --null -T - -cf - | tar -C "$src" -xf -
    else
        tar --exclude='./build*' --exclude=./.git -cf - . | tar -C "$src" -xf -
    fi
    local t0 log=$work/build.log
    t0=$(now)
    echo "package-test: dpkg-buildpackage (log: $log)"
    if ! (cd "$src" && CNETD_WERROR=1 dpkg-buildpackage -us -uc -j"$(nproc)") >"$log" 2>&1; then
        tail -40 "$log" >&2
        fail "dpkg-buildpackage failed (see $log)"
        return 1
    fi
    echo "package-test: package build took $(since "$t0") s"
    # -Werror covers the compiler; this covers everything else that warns (linker, meson, dh_*,
    # dpkg-shlibdeps) without failing the build.
    if grep -in 'warning' "$log" | grep -v 'Werror=' >&2; then fail "warnings in the package build"; fi
    [[ $(dpkg-parsechangelog -l debian/changelog -S Version) == "$version" ]] ||
        fail "debian/changelog's version is not meson.build's $version"
}

# --- 2. lintian -------------------------------------------------------------------------------------
run_lintian() {
    local out
    # The .changes names both .debs and the .dsc (source checks: debian/control, copyright, rules).
    out=$(lintian --fail-on error,warning "$work"/cnetd_"$version"_*.changes 2>&1) ||
        fail "lintian reports errors or warnings"
    out=$(grep -v "running with root privileges" <<<"$out" || true)
    [[ -z "$out" ]] || echo "$out"
}

# --- 3. Contents ------------------------------------------------------------------------------------
# Every file each package must hold (".gz" stripped: dh_compress decides by size for docs).
expected_paths() {  # package
    case $1 in
    cnetd)
        printf '%s\n' ./etc/cnetd/cnetd.yaml ./lib/systemd/system/cnetd.service \
            ./lib/systemd/system/cnetd.socket ./usr/bin/netctl ./usr/lib/sysusers.d/cnetd.conf \
            ./usr/lib/tmpfiles.d/cnetd.conf ./usr/sbin/cnetd ./usr/share/man/man5/cnetd.yaml.5 \
            ./usr/share/man/man8/cnetd.8 ./usr/share/man/man8/netctl.8 \
            ./usr/share/doc/cnetd/copyright ./usr/share/doc/cnetd/changelog \
            ./usr/share/doc/cnetd/README.md
        for d in docs/*.md; do echo "./usr/share/doc/cnetd/${d#docs/}"; done
        # Shell completion (etc/completion, installed by meson).
        [[ ! -e etc/completion/netctl.bash ]] || echo ./usr/share/bash-completion/completions/netctl
        [[ ! -e etc/completion/_netctl ]] || echo ./usr/share/zsh/vendor-completions/_netctl
        ;;
    cnetd-cni)
        printf '%s\n' ./usr/lib/cni/cnetd-cni ./usr/share/doc/cnetd-cni/copyright \
            ./usr/share/doc/cnetd-cni/changelog ./usr/share/doc/cnetd-cni/cni.md \
            ./usr/share/doc/cnetd-cni/examples/10-cnetd.conflist
        ;;
    esac
}

check_contents() {  # package deb
    local pkg=$1 deb=$2 listing diff
    listing=$(dpkg-deb -c "$deb")
    diff=$(diff <(expected_paths "$pkg" | sort) \
        <(awk '$1 !~ /^d/ { print $6 }' <<<"$listing" | sed 's/\.gz$//' | sort)) ||
        fail "$pkg: paths differ from the expected list (< missing, > unexpected):"$'\n'"$diff"
    local bin
    for bin in ./usr/sbin/cnetd ./usr/bin/netctl ./usr/lib/cni/cnetd-cni; do
        if grep -q " $bin\$" <<<"$listing"; then
            grep -q "^-rwxr-xr-x root/root .* $bin\$" <<<"$listing" || fail "$pkg: $bin not 0755 root:root"
        fi
    done
}

check_hardening() {  # extracted root
    local f
    for f in "$1"/usr/sbin/cnetd "$1"/usr/bin/netctl "$1"/usr/lib/cni/cnetd-cni; do
        readelf -h "$f" | grep -c 'Type: *DYN' >/dev/null || fail "$f: not PIE"
        readelf -l "$f" | grep -c GNU_RELRO >/dev/null || fail "$f: no RELRO"
        readelf -d "$f" | grep -c 'BIND_NOW' >/dev/null || fail "$f: no bind-now"
        # Fortified calls or the stack protector (which ones depends on the code): the hardening
        # flags reached the build.
        nm -D "$f" | grep -c ' __[a-z_]*_chk' >/dev/null || fail "$f: no fortify, no stack protector"
    done
}

# The maintainer scripts dh generated: the group before the socket, the socket enabled and
# started, the service neither (the socket starts it) but restarted on upgrade, purge-only state
# removal.
check_scripts() {  # control dir of the cnetd package
    local c=$1
    grep -qx /etc/cnetd/cnetd.yaml "$c/conffiles" || fail "/etc/cnetd/cnetd.yaml is not a conffile"
    local sysusers socket
    sysusers=$(grep -n "systemd-sysusers.*cnetd.conf" "$c/postinst" | head -1 | cut -d: -f1)
    socket=$(grep -n "deb-systemd-helper enable 'cnetd.socket'" "$c/postinst" | head -1 | cut -d: -f1)
    [[ -n $sysusers && -n $socket && $sysusers -lt $socket ]] ||
        fail "postinst: sysusers must run, then enable cnetd.socket"
    grep -q "systemd-tmpfiles .*--create cnetd.conf" "$c/postinst" || fail "postinst: no tmpfiles"
    grep -q "deb-systemd-invoke start 'cnetd.socket'" "$c/postinst" || fail "postinst: socket not started"
    grep -q "debian-installed 'cnetd.service'" "$c/postinst" || fail "postinst: cnetd.service enabled"
    grep -q "try-restart 'cnetd.service'" "$c/postinst" || fail "postinst: no try-restart of the service"
    if grep -E "deb-systemd-invoke (start|restart|\\\$_dh_action) .*'cnetd.service'" "$c/postinst" ||
        grep -E "deb-systemd-invoke (restart|\\\$_dh_action) .*'cnetd.socket'|debian-installed 'cnetd.socket'" \
            "$c/postinst"; then
        fail "postinst: starts cnetd.service, restarts cnetd.socket or does not enable it"
    fi
}

# --- 4. The installed package, in a private namespace -------------------------------------------
stage_view() {  # the extracted root -> $work/view/{usr,etc} layers for the overlays
    local r=$1 v=$work/view
    rm -rf "$v" && mkdir -p "$v/usr" "$v/etc" "$v/sys/etc"
    cp -a "$r/usr/." "$v/usr/"
    cp -a "$r/lib/." "$v/usr/lib/"  # merged /usr: /lib is /usr/lib here
    cp -a "$r/etc/." "$v/etc/"
    # The installed sysusers.d entry applied by systemd-sysusers to a copy of /etc/group; the copy
    # (host groups + cnetd) is what the namespace's /etc shows.
    cp /etc/group /etc/passwd "$v/sys/etc/"
    mkdir -p "$v/sys/usr/lib/sysusers.d"
    cp "$r/usr/lib/sysusers.d/cnetd.conf" "$v/sys/usr/lib/sysusers.d/"
    systemd-sysusers --root="$v/sys" >/dev/null 2>&1 || fail "systemd-sysusers of the installed entry"
    cp "$v/sys/etc/group" "$v/etc/group"
}

sandbox() {
    unshare --net --mount --pid --fork --propagation private --mount-proc -- \
        "$root/tools/package-test.sh" --in-sandbox
}

# Inside the namespace: the package's files over /usr and /etc, read-only.
in_sandbox() {
    local v=$work/view
    mount -t tmpfs tmpfs /run
    ip link set lo up
    mount -t overlay overlay -o "lowerdir=$v/usr:/usr" /usr
    mount -t overlay overlay -o "lowerdir=$v/etc:/etc" /etc
    echo "package-test: installed binaries, units, tmpfiles, sysusers"
    check_installed_tools
    check_units
    echo "package-test: cnetd (the unit's ExecStart): create, connect, ping, disconnect, stop"
    run_daemon
    echo "package-test: postrm remove / purge"
    check_purge
    exit $((failures > 0))
}

check_installed_tools() {
    [[ $(command -v cnetd) == /usr/sbin/cnetd ]] || fail "cnetd is not /usr/sbin/cnetd"
    cnetd --version | grep -cF "$version" >/dev/null || fail "cnetd --version does not say $version"
    netctl --help | grep -c "network" >/dev/null || fail "netctl --help"
    CNI_COMMAND=VERSION /usr/lib/cni/cnetd-cni </dev/null | grep -c supportedVersions >/dev/null ||
        fail "cnetd-cni VERSION"
}

check_units() {
    local man=--man=no err
    command -v man >/dev/null && man=--man=yes  # Documentation=man:... against the installed pages
    if ! err=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$man" \
        /lib/systemd/system/cnetd.socket /lib/systemd/system/cnetd.service 2>&1) ||
        grep -q "cnetd" <<<"$err"; then
        fail "systemd-analyze verify of the installed units: $err"
    fi
    # /run entries only: /var/lib is the host's here.
    systemd-tmpfiles --create --prefix=/run /usr/lib/tmpfiles.d/cnetd.conf ||
        fail "systemd-tmpfiles of the installed entry"
    [[ -d /run/cnetd && -d /run/docker/netns ]] || fail "tmpfiles did not make /run/cnetd, /run/docker/netns"
    getent group cnetd >/dev/null || fail "sysusers did not create the group cnetd"
}

# cnetd as the unit starts it (its ExecStart, the installed config), state in /run.
run_daemon() {
    local exec
    exec=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/cnetd.service)
    $exec --state-dir /run/cnetd-state >/run/cnetd.log 2>&1 &
    local pid=$!
    local i
    for i in $(seq 100); do netctl info >/dev/null 2>&1 && break; sleep 0.1; done
    [[ $(stat -c %G /run/cnetd/cnetd.sock 2>/dev/null) == cnetd ]] || fail "socket group is not cnetd"
    local ns=/run/docker/netns/pkgtest
    { netctl network create pkgnet --subnet 10.99.0.0/24 &&
        netctl netns create pkgtest &&
        netctl network connect pkgnet pkgtest &&
        nsenter --net=$ns ping -c1 -W2 10.99.0.1 >/dev/null &&
        netctl network disconnect pkgnet pkgtest &&
        netctl netns rm pkgtest &&
        netctl network rm pkgnet; } >/run/netctl.log 2>&1 || {
        cat /run/netctl.log >&2
        fail "create/connect/ping/disconnect with the installed binaries"
    }
    kill -TERM "$pid"
    wait "$pid" || { cat /run/cnetd.log >&2; fail "cnetd did not exit 0 on SIGTERM"; }
}

# The postrm: remove keeps the state, purge removes it. /var/lib is a tmpfs here; /etc read-only.
check_purge() {
    local c=$work/control
    mount -t tmpfs tmpfs /var/lib
    mkdir -p /var/lib/cnetd && touch /var/lib/cnetd/state.json
    # (deb-systemd-helper, not called from dpkg here, does nothing and says so: silenced.)
    sh "$c/postrm" remove >/dev/null 2>&1 && [[ -e /var/lib/cnetd/state.json ]] || fail "postrm remove: state gone"
    sh "$c/postrm" purge >/dev/null 2>&1 && [[ ! -e /var/lib/cnetd ]] || fail "postrm purge: /var/lib/cnetd stays"
}

main() {
    local t0 debs
    t0=$(now)
    for c in dpkg-buildpackage dh lintian dpkg-deb systemd-analyze unshare readelf; do
        command -v "$c" >/dev/null || { echo "package-test: $c missing (tools/install-deps.sh)" >&2; exit 1; }
    done
    if [[ "${PKG_REUSE:-}" != 1 ]]; then build_packages || exit 1; fi
    ((build_only)) && exit $((failures > 0))
    rm -rf "$work/control" "$work/root" "$work/view"
    echo "package-test: lintian"
    run_lintian
    echo "package-test: contents, hardening, maintainer scripts"
    local deb_cnetd=$work/cnetd_${version}_$(dpkg --print-architecture).deb
    local deb_cni=$work/cnetd-cni_${version}_$(dpkg --print-architecture).deb
    check_contents cnetd "$deb_cnetd"
    check_contents cnetd-cni "$deb_cni"
    dpkg-deb -e "$deb_cnetd" "$work/control"
    check_scripts "$work/control"
    dpkg -x "$deb_cnetd" "$work/root"
    dpkg -x "$deb_cni" "$work/root"
    check_hardening "$work/root"
    stage_view "$work/root"
    sandbox || fail "the installed package in a private namespace (above)"
    echo "package-test: $((failures)) failure(s), $(since "$t0") s in all"
    exit $((failures > 0))
}

if ((in_sandbox)); then in_sandbox; else main; fi
