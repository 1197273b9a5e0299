#!/usr/bin/env python3
"""Layering check for cnetd (python3 stdlib only).

Scans every C++ source/header under lib/, daemon/ and tools/ and fails (exit 1) when
  * a header of a C/C++ library is included outside the one layer that owns it
    (libnl: lib/netlink; libnftnl/libmnl: lib/nft; yaml-cpp: lib/config;
    Boost.Beast/Asio: lib/api, lib/etcd and daemon/; OpenSSL: lib/etcd; prometheus-cpp: lib/obs),
    or
  * a layer includes a project header of a layer that is not among its dependencies
    (the ALLOWED table below, closed transitively) -- in particular a lower layer including
    a higher one (order: base < obs < dns < nft < firewall < core < netns < netlink < platform <
    config < store < cluster < api < cni < etcd < daemon, tools), or
  * ALLOWED disagrees with the `dependencies :` of a static_library in lib/*/meson.build
    (the table must be updated with the build, not drift from it), or
  * an ALLOW_LIST entry no longer matches anything (remove it).

Each failure is one line "<path>:<line>: [<rule>] <what>". Usage:
    tools/check-layers.py [--root <source root>]
Exit status: 0 clean, 1 violations, 2 usage/internal error.
"""

import argparse
import os
import re
import sys

# The units of layering, lowest first. A lib/<dir> is one unit, except lib/api/json_parse.*, which
# meson builds as its own library (json_parse_dep: base + json, no Boost) so that lib/cni can use
# it without the HTTP client. daemon/ and each tools/<dir> sit above every lib/ layer.
ORDER = [
    "base", "obs", "dns", "nft", "firewall", "core", "netns", "netlink", "platform", "config", "store",
    "cluster", "api.json_parse", "api", "cni", "etcd",
    "daemon", "netctl", "cnetd-cni", "bench",
]

# Allowed include edges: unit -> the units it depends on directly, as in its meson.build
# (`dependencies :` of its static_library/executable; external libraries left out). A unit may
# include its own headers and those of any unit reachable through this table.
ALLOWED = {
    "base": [],                                     # lib/base: fmt
    "obs": ["base"],                                # lib/obs: + prometheus-cpp-core
    "dns": ["base"],                                # lib/dns: wire codec, zone, resolv.conf
    "nft": ["base"],                                # lib/nft: + libmnl, libnftnl
    "firewall": ["base", "nft"],                    # lib/firewall
    "core": ["base", "firewall"],                   # lib/core
    "netns": ["base"],                              # lib/netns: + threads
    "netlink": ["base", "netns"],                   # lib/netlink: + libnl
    "platform": ["core", "netns", "netlink"],       # lib/platform
    "config": ["core"],                             # lib/config: + yaml-cpp
    "store": ["core"],                              # lib/store: + json
    "cluster": ["base", "core"],                    # lib/cluster: overlay records + json
    "api.json_parse": ["base"],                     # lib/api cnetd_json_parse: + json
    "api": ["base", "api.json_parse"],              # lib/api cnetd_api: + json, Boost
    "cni": ["base", "api.json_parse"],              # lib/cni: + json
    "etcd": ["base"],                               # lib/etcd: + json, Boost, OpenSSL
    # daemon/meson.build: cnetd_daemon (api, base, core, store, dns: the embedded resolver,
    # cluster + etcd + config: the cluster agent, obs: metrics) + the cnetd executable
    # (firewall, config, platform).
    "daemon": ["api", "base", "core", "store", "dns", "firewall", "config", "platform",
               "cluster", "etcd", "obs"],
    "netctl": ["api", "base"],                      # tools/netctl: + CLI11
    "cnetd-cni": ["api", "cni", "base"],            # tools/cnetd-cni
    "bench": ["netlink", "netns", "base"],          # tools/bench (cnetd-bench-floor)
}

# Third-party headers that belong to one layer each: (rule name, include prefix, owning units).
EXTERNAL = [
    ("libnl", "netlink/", {"netlink"}),
    ("libnftnl", "libnftnl/", {"nft"}),
    ("libmnl", "libmnl/", {"nft"}),
    ("yaml-cpp", "yaml-cpp/", {"config"}),
    ("boost-beast", "boost/beast", {"api", "daemon", "etcd"}),
    ("boost-asio", "boost/asio", {"api", "daemon", "etcd"}),
    ("openssl", "openssl/", {"etcd"}),
    ("prometheus-cpp", "prometheus/", {"obs"}),
]

# Known violations being removed by a branch in flight: (path, rule, why). Each entry must match
# at least one include, else the check fails so that the entry is deleted once fixed.
ALLOW_LIST: list = [
    # (path, rule, why): a known violation tolerated for now. Empty: every layer keeps its rules.
]

# meson library name -> unit, where it is not the directory name.
LIBRARY_UNITS = {"cnetd_json_parse": "api.json_parse"}
# <name>_dep -> unit, for the project's own dependency objects (others are external).
DEP_UNITS = {u.replace("api.", "") + "_dep": u for u in ORDER[:ORDER.index("daemon")]}

SOURCE_EXT = (".cpp", ".hpp", ".h", ".cc", ".hh")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def unit_of(rel):
    """The layering unit of a repository-relative path, or None if it is outside lib/daemon/tools."""
    parts = rel.split("/")
    if parts[0] == "lib" and len(parts) >= 3:
        if parts[1] == "api" and os.path.splitext(parts[2])[0] == "json_parse":
            return "api.json_parse"
        return parts[1]
    if parts[0] == "daemon":
        return "daemon"
    if parts[0] == "tools" and len(parts) >= 3:
        return parts[1]
    return None


def closure(unit):
    """Every unit `unit` may include: itself plus ALLOWED, transitively."""
    seen, todo = {unit}, list(ALLOWED.get(unit, []))
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo.extend(ALLOWED.get(u, []))
    return seen


def resolve(root, rel, kind, target):
    """Repository-relative path of a project header, or None for a system/third-party one.

    Quoted includes resolve against the including file's directory, then lib/ and the root
    (meson's include_directories); angle includes only against lib/ and the root, so that
    <netlink/msg.h> (libnl) is not mistaken for lib/netlink/."""
    bases = [os.path.dirname(rel)] if kind == '"' else []
    bases += ["lib", ""]
    for base in bases:
        cand = os.path.normpath(os.path.join(base, target))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def check_table():
    """Internal consistency: every unit known and every allowed edge pointing down ORDER."""
    errors = []
    for unit, deps in ALLOWED.items():
        for dep in deps:
            if dep not in ORDER or ORDER.index(dep) >= ORDER.index(unit):
                errors.append(f"tools/check-layers.py: [table] edge {unit} -> {dep} does not point "
                              f"to a lower layer")
    return errors


def check_meson(root):
    """ALLOWED must equal the project dependencies of each static_library in lib/*/meson.build."""
    errors = []
    libdir = os.path.join(root, "lib")
    for layer in sorted(os.listdir(libdir)):
        path = os.path.join(libdir, layer, "meson.build")
        if not os.path.isfile(path):
            continue
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"static_library\(\s*'([^']+)'", text):
            # The call's argument list up to its closing parenthesis (none nested but dep calls).
            depth, end = 0, m.end()
            for end in range(m.start() + len("static_library"), len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            args = text[m.end():end]
            deps_m = re.search(r"dependencies\s*:\s*\[([^\]]*)\]", args)
            names = re.findall(r"\b(\w+_dep)\b", deps_m.group(1)) if deps_m else []
            got = sorted({DEP_UNITS[n] for n in names if n in DEP_UNITS})
            unit = LIBRARY_UNITS.get(m.group(1), layer)
            want = sorted(ALLOWED.get(unit, ["<unit missing from ALLOWED>"]))
            if got != want:
                line = text.count("\n", 0, m.start()) + 1
                errors.append(f"lib/{layer}/meson.build:{line}: [table] {m.group(1)} depends on "
                              f"{got} but tools/check-layers.py ALLOWED[{unit!r}] says {want}; "
                              f"update the table with the build")
    return errors


def scan(root):
    """(errors, number of files, number of includes, allow-list entries used)."""
    errors, files, includes, used = [], 0, 0, set()
    allow = {(p, r): i for i, (p, r, _) in enumerate(ALLOW_LIST)}
    for top in ("lib", "daemon", "tools"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SOURCE_EXT):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                unit = unit_of(rel)
                if unit is None:
                    continue
                files += 1
                with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        includes += 1
                        for rule, msg in check_include(root, rel, unit, m.group(1), m.group(2)):
                            if (rel, rule) in allow:
                                used.add(allow[(rel, rule)])
                                continue
                            errors.append(f"{rel}:{lineno}: [{rule}] {msg}")
    return errors, files, includes, used


def check_include(root, rel, unit, kind, target):
    """The (rule, message) pairs one include violates."""
    quote = f'"{target}"' if kind == '"' else f"<{target}>"
    project = resolve(root, rel, kind, target)
    if project is None:
        for rule, prefix, owners in EXTERNAL:
            if target.startswith(prefix) and unit not in owners:
                where = " and ".join(sorted(owners))
                yield rule, (f"{quote}: {rule} headers may only be included in layer {where}, "
                             f"not in {unit}")
        return
    dep = unit_of(project)
    if dep is None or dep in closure(unit):
        return
    if dep in ORDER and unit in ORDER and ORDER.index(dep) > ORDER.index(unit):
        yield "upward", f"{quote}: lower layer {unit} includes higher layer {dep}"
    else:
        yield "edge", (f"{quote}: layer {unit} may not include {dep} (not among its "
                       f"dependencies {sorted(closure(unit) - {unit})})")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."),
                    help="source root holding lib/, daemon/, tools/")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)
    if not os.path.isdir(os.path.join(root, "lib")):
        print(f"check-layers: no lib/ under {root}", file=sys.stderr)
        return 2
    errors = check_table() + check_meson(root)
    scan_errors, files, includes, used = scan(root)
    errors += scan_errors
    for i, (path, rule, why) in enumerate(ALLOW_LIST):
        if i in used:
            print(f"check-layers: allowed for now: {path} [{rule}] ({why})")
        else:
            errors.append(f"{path}: [allow-list] entry for rule {rule} matches nothing any more; "
                          f"delete it from ALLOW_LIST in tools/check-layers.py")
    for e in errors:
        print(e)
    verdict = f"{len(errors)} violation(s)" if errors else "OK"
    print(f"check-layers: {verdict} ({files} files, {includes} includes)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
