#!/usr/bin/env python3
"""Tests of tools/check-layers.py: each plants one violation in a temporary copy of the source
tree (lib/, daemon/, tools/) and asserts the check fails with a line naming the file, the line
and the rule. Also: the unmodified copy passes. python3 stdlib only.

    tools/check_layers_test.py [-v]
"""

import contextlib
import importlib.util
import io
import os
import shutil
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_spec = importlib.util.spec_from_file_location("check_layers", os.path.join(HERE, "check-layers.py"))
check_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_layers)


class CheckLayersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="check-layers-")
        keep = lambda d, names: [n for n in names if n in ("build", "__pycache__")]
        for top in ("lib", "daemon", "tools"):
            shutil.copytree(os.path.join(ROOT, top), os.path.join(self.tmp, top), ignore=keep)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_check(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = check_layers.main(["--root", self.tmp])
        return rc, out.getvalue()

    def plant(self, rel, line):
        """Appends `line` to the copy of `rel`; returns its line number."""
        path = os.path.join(self.tmp, rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if not text.endswith("\n"):
            text += "\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + line + "\n")
        return text.count("\n") + 1

    def assert_flags(self, rel, include, rule, words=()):
        lineno = self.plant(rel, f"#include {include}")
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        prefix = f"{rel}:{lineno}: [{rule}] {include}"
        hits = [l for l in out.splitlines() if l.startswith(prefix)]
        self.assertEqual(len(hits), 1, f"no line starting {prefix!r} in:\n{out}")
        for w in words:
            self.assertIn(w, hits[0])
        self.assertIn("check-layers: 1 violation(s)", out)

    def test_clean_tree_passes(self):
        rc, out = self.run_check()
        self.assertEqual(rc, 0, out)
        self.assertIn("check-layers: OK", out)

    def test_libnftnl_outside_nft(self):
        self.assert_flags("lib/core/ipam.cpp", "<libnftnl/rule.h>", "libnftnl", ["nft", "core"])

    def test_libmnl_outside_nft(self):
        self.assert_flags("daemon/server.cpp", "<libmnl/libmnl.h>", "libmnl", ["nft", "daemon"])

    def test_libnl_outside_netlink(self):
        self.assert_flags("lib/platform/linux_kernel.cpp", "<netlink/msg.h>", "libnl",
                          ["netlink", "platform"])

    def test_yaml_outside_config(self):
        self.assert_flags("lib/store/file_store.cpp", "<yaml-cpp/yaml.h>", "yaml-cpp", ["config"])

    def test_beast_outside_api_and_daemon(self):
        self.assert_flags("lib/cni/cni.cpp", "<boost/beast/http.hpp>", "boost-beast", ["cni"])

    def test_asio_in_json_parse(self):
        # json_parse is the Boost-free part of lib/api that lib/cni links.
        self.assert_flags("lib/api/json_parse.cpp", "<boost/asio/io_context.hpp>", "boost-asio",
                          ["api.json_parse"])

    def test_openssl_outside_etcd(self):
        self.assert_flags("lib/api/client.cpp", "<openssl/ssl.h>", "openssl", ["etcd", "api"])

    def test_prometheus_outside_obs(self):
        # prometheus-cpp stays in lib/obs: the daemon reads metrics through obs/metrics.hpp.
        self.assert_flags("daemon/handlers.cpp", "<prometheus/registry.h>", "prometheus-cpp",
                          ["obs", "daemon"])

    def test_obs_uses_base_only(self):
        # lib/obs sits just above base: it may not see the engine's model.
        self.assert_flags("lib/obs/metrics.cpp", '"core/model.hpp"', "upward",
                          ["lower layer obs", "higher layer core"])

    def test_etcd_uses_base_only(self):
        # lib/etcd sits above core in ORDER but links base only: the cluster records are not its.
        self.assert_flags("lib/etcd/codec.cpp", '"core/model.hpp"', "edge", ["etcd", "core"])

    def test_lower_layer_includes_higher(self):
        self.assert_flags("lib/netlink/link.cpp", '"platform/linux_kernel.hpp"', "upward",
                          ["lower layer netlink", "higher layer platform"])

    def test_lib_includes_daemon(self):
        self.assert_flags("lib/store/lock.hpp", '"daemon/worker.hpp"', "upward", ["daemon"])

    def test_angle_project_include_is_a_project_include(self):
        # <netlink/link.hpp> names lib/netlink/link.hpp (found under lib/), not a libnl header.
        self.assert_flags("lib/netns/netns.cpp", "<netlink/link.hpp>", "upward",
                          ["lower layer netns", "higher layer netlink"])

    def test_cni_may_not_use_the_http_client(self):
        # lib/cni links json_parse_dep only, not api_dep (Boost).
        self.assert_flags("lib/cni/cni.hpp", '"api/client.hpp"', "edge", ["cni", "api"])

    def test_edge_not_in_dependencies(self):
        # core is lower than netctl, but netctl links only the API client and base.
        self.assert_flags("tools/netctl/main.cpp", '"core/engine.hpp"', "edge", ["netctl", "core"])

    def test_meson_dependency_drift(self):
        path = os.path.join(self.tmp, "lib/config/meson.build")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("dependencies : [core_dep, yaml_dep]",
                                 "dependencies : [core_dep, store_dep, yaml_dep]", 1))
        rc, out = self.run_check()
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"lib/config/meson\.build:\d+: \[table\] cnetd_config depends on")

    def test_stale_allow_list_entry(self):
        saved = list(check_layers.ALLOW_LIST)
        check_layers.ALLOW_LIST.append(("lib/base/net.cpp", "libnl", "planted"))
        try:
            rc, out = self.run_check()
        finally:
            check_layers.ALLOW_LIST[:] = saved
        self.assertEqual(rc, 1, out)
        self.assertIn("lib/base/net.cpp: [allow-list] entry for rule libnl matches nothing", out)


if __name__ == "__main__":
    unittest.main()
