"""The library installs and the server packages.

`cmake --install` into a scratch prefix writes headers, static libraries, a
CMake package and a pkg-config file, and nothing outside the prefix;
examples/ builds against the installed package with find_package(atoll),
and a program builds with pkg-config alone; both run. `cpack -G DEB` makes
atoll_VERSION_amd64.deb with the binary, the systemd units, the example
config (a conffile) and the docs; lintian finds no error or warning in it;
dpkg installs it into a scratch root, the installed binary serves a site
published with the installed binary, and removal and purge leave what
Debian says they must.

(Release builds only: tests/CMakeLists.txt does not register this file in a
sanitizer build, whose libraries are not what anyone installs.)"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

from atoll_proc import BUILD, AtollProcess, ExampleProcess, binary
from site_host import SiteHost, write_site

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*argv, env=None, timeout=600, check=True, cwd=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def version():
    return run(binary("atoll"), "--version").stdout.split()[1]


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run("cmake", "--install", BUILD, "--prefix", cls.prefix)
        with open(os.path.join(BUILD, "install_manifest.txt")) as f:
            cls.manifest = f.read().split()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_everything_lands_inside_the_prefix(self):
        self.assertTrue(self.manifest)
        for path in self.manifest:
            self.assertTrue(path.startswith(self.prefix + "/"), path)
            self.assertTrue(os.path.isfile(path), path)

    def test_headers_libraries_and_package_files(self):
        p = self.prefix
        for rel in ("include/atoll/http/server.hpp", "include/atoll/host/host.hpp",
                    "include/atoll/runtime/task.hpp", "include/atoll/web/router.hpp",
                    "lib/libatoll_runtime.a", "lib/libatoll_net.a", "lib/libatoll_http.a",
                    "lib/libatoll_web.a", "lib/libatoll_host.a", "lib/libatoll_llhttp.a",
                    "lib/cmake/atoll/atollConfig.cmake", "lib/cmake/atoll/atollConfigVersion.cmake",
                    "lib/pkgconfig/atoll.pc", "bin/atoll", "etc/atoll/atoll.toml",
                    "lib/systemd/system/atoll.service"):
            self.assertTrue(os.path.exists(os.path.join(p, rel)), rel)
        # Every header the installed ones include is installed too.
        for root, _, files in os.walk(os.path.join(p, "include", "atoll")):
            for name in files:
                text = open(os.path.join(root, name)).read()
                for inc in re.findall(r'#include <(atoll/[^>]+)>', text):
                    self.assertTrue(os.path.exists(os.path.join(p, "include", inc)), f"{name}: {inc}")

    def test_examples_build_against_the_installed_package(self):
        out = os.path.join(self.tmp, "examples")
        run("cmake", "-S", os.path.join(SOURCE, "examples"), "-B", out, "-G", "Ninja",
            f"-DCMAKE_PREFIX_PATH={self.prefix}", "-DCMAKE_BUILD_TYPE=Release")
        cache = open(os.path.join(out, "CMakeCache.txt")).read()
        self.assertIn(f"atoll_DIR:PATH={self.prefix}/lib/cmake/atoll", cache)
        run("cmake", "--build", out, "-j2")
        hello = AtollProcess(os.path.join(out, "hello"), "--access-log", "off").start()
        try:
            with socket.create_connection((hello.host, hello.port), timeout=10) as s:
                s.sendall(b"GET /hello/ada HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            self.assertTrue(data.endswith(b"\r\n\r\nHello, ada!\n"), data)
        finally:
            self.assertEqual(hello.stop(), 0)
        for name in ("echo", "daytime"):
            self.assertTrue(os.access(os.path.join(out, name), os.X_OK), name)

    def test_a_version_that_is_not_installed_is_refused(self):
        project = os.path.join(self.tmp, "wants-9")
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.25)\nproject(w CXX)\nfind_package(atoll 9.0 REQUIRED)\n")
        p = run("cmake", "-S", project, "-B", os.path.join(project, "build"),
                f"-DCMAKE_PREFIX_PATH={self.prefix}", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(version(), p.stderr)

    def test_pkg_config_alone_builds_a_program(self):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "lib", "pkgconfig"))
        flags = run("pkg-config", "--cflags", "--libs", "atoll", env=env).stdout.split()
        includes = [os.path.normpath(f[2:]) for f in flags if f.startswith("-I")]
        self.assertIn(os.path.join(self.prefix, "include"), includes)
        self.assertEqual(run("pkg-config", "--modversion", "atoll", env=env).stdout.strip(), version())
        exe = os.path.join(self.tmp, "echo-pc")
        run("g++", "-std=c++20", "-O1", os.path.join(SOURCE, "examples", "echo", "main.cpp"), "-o", exe,
            *flags, env=env)
        echo = ExampleProcess("echo", exe=exe).start()
        try:
            with socket.create_connection((echo.host, echo.port), timeout=10) as s:
                s.sendall(b"ping\n")
                self.assertEqual(s.recv(100), b"ping\n")
        finally:
            self.assertEqual(echo.stop(), 0)


class DebPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="atoll-deb-")
        run("cpack", "-G", "DEB", "-B", os.path.join(cls.tmp, "out"), cwd=BUILD)
        cls.deb = os.path.join(cls.tmp, "out", f"atoll_{version()}_amd64.deb")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        return run("dpkg-deb", "-f", self.deb, name).stdout.strip()

    def test_the_package_holds_the_server(self):
        self.assertTrue(os.path.isfile(self.deb), os.listdir(os.path.join(self.tmp, "out")))
        self.assertEqual((self.field("Package"), self.field("Version"), self.field("Architecture")),
                         ("atoll", version(), "amd64"))
        files = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", self.deb).stdout.splitlines()
                 if not line.endswith("/")}
        self.assertEqual(files, {"/usr/bin/atoll", "/etc/atoll/atoll.toml", "/etc/logrotate.d/atoll",
                                 "/lib/systemd/system/atoll.service", "/lib/systemd/system/atoll.socket",
                                 "/usr/share/doc/atoll/README.md", "/usr/share/doc/atoll/changelog.gz",
                                 "/usr/share/doc/atoll/copyright", "/usr/share/man/man1/atoll.1.gz"})
        control = os.path.join(self.tmp, "control")
        run("dpkg-deb", "-e", self.deb, control)
        self.assertEqual(open(os.path.join(control, "conffiles")).read().split(),
                         ["/etc/atoll/atoll.toml", "/etc/logrotate.d/atoll"])

    def test_every_dependency_is_a_debian_package(self):
        depends = self.field("Depends")
        names = [d.strip().split()[0] for d in depends.split(",")]
        for lib in ("libc6", "libssl3", "libsqlite3-0", "adduser"):
            self.assertIn(lib, names)
        for name in names:
            p = run("apt-cache", "show", name, check=False)
            self.assertEqual(p.returncode, 0, f"{name} is not in the archive")

    def test_lintian_finds_no_error_or_warning(self):
        args = ["lintian", "--fail-on", "error,warning"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        p = run(*args, self.deb, check=False, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotRegex(p.stdout, r"(?m)^[EW]: ")

    def test_installs_into_a_scratch_root_and_serves(self):
        root = os.path.join(self.tmp, "root")
        for d in ("var/lib/dpkg/updates", "var/lib/dpkg/info"):
            os.makedirs(os.path.join(root, d))
        open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
        # The maintainer scripts run outside the root, with DPKG_ROOT set:
        # they must change nothing on this system (no user, no systemctl).
        users = open("/etc/passwd").read()
        dpkg = ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends"]
        run(*dpkg, "-i", self.deb)
        self.assertEqual(open("/etc/passwd").read(), users)
        status = run("dpkg", f"--root={root}", "-s", "atoll").stdout
        self.assertIn("Status: install ok installed", status)
        exe = os.path.join(root, "usr", "bin", "atoll")
        self.assertEqual(run(exe, "--version").stdout.strip(), f"atoll {version()}")
        self.assertIn("atoll", run("man", "-l", os.path.join(root, "usr/share/man/man1/atoll.1.gz"),
                                   env=dict(os.environ, MANPAGER="cat", MANWIDTH="80")).stdout)

        # The packaged config, with the addresses and data directory moved
        # to this test's (flags win over the file).
        data = os.path.join(self.tmp, "data")
        host = SiteHost(data, "--config", os.path.join(root, "etc/atoll/atoll.toml"),
                        "--base-domain", "localhost", exe=exe).start()
        try:
            site = write_site(os.path.join(self.tmp, "site"), {"index.html": "<p>packaged</p>"})
            run(exe, "publish", site, "--site", "pkg", "--server", host.admin_url, "--token", host.token)
            r = host.get("pkg", "/")
            self.assertEqual((r.status, r.data), (200, b"<p>packaged</p>"))
        finally:
            self.assertEqual(host.stop(), 0)

        # Remove keeps the conffiles; purge takes them too.
        run(*dpkg, "-r", "atoll")
        self.assertFalse(os.path.exists(exe))
        self.assertTrue(os.path.exists(os.path.join(root, "etc/atoll/atoll.toml")))
        run(*dpkg, "-P", "atoll")
        self.assertFalse(os.path.exists(os.path.join(root, "etc/atoll/atoll.toml")))
        self.assertNotIn("Status: install ok installed",
                         run("dpkg", f"--root={root}", "-s", "atoll", check=False).stdout)


if __name__ == "__main__":
    unittest.main()
