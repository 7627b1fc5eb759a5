"""Service names from netsniff-ng-format conf files."""

from flowtop.services import Services, load_conf, parse_conf


def test_parse_conf_skips_junk_and_sanitizes():
    text = "# comment\n80, http\n\nbogus line\n70000, toolarge\n22 , ssh \n99, ev\x1b[2Jil\n"
    assert parse_conf(text) == {80: "http", 22: "ssh", 99: "ev?[2Jil"}


def test_packaged_conf_loads_from_the_package(tmp_path):
    tcp = load_conf("tcp", etc_dir=str(tmp_path))        # nothing in the fake /etc/flowtop
    assert tcp[443] == "https" and tcp[22] == "ssh"
    assert load_conf("udp", etc_dir=str(tmp_path))[53] == "domain"


def test_etc_overrides_packaged(tmp_path):
    (tmp_path / "tcp.conf").write_text("443, mytls\n")
    s = Services(etc_dir=str(tmp_path), system=lambda: {"tcp": {80: "sys-80"}})
    assert s.name(443, 6) == "mytls"
    assert s.name(80, 6) == "sys-80"                      # not in the file: services db


def test_flow_label_prefers_named_then_lower_port(tmp_path):
    s = Services(etc_dir=str(tmp_path), system=dict)
    assert s.of_flow(51515, 443, 6) == "https"
    assert s.of_flow(53, 40000, 17) == "domain"           # the named side, even as source
    assert s.of_flow(40001, 40000, 17) == "40000"
    assert s.of_flow(51515, 443, 6, numeric=True) == "443"
    assert s.of_flow(None, None, 1) == ""


def test_system_services_parsed_once():
    from flowtop.services import parse_services
    db = parse_services("http 80/tcp www # web\nbad\ndomain 53/udp\nx\x1b 9/tcp\n")
    assert db == {"tcp": {80: "http"}, "udp": {53: "domain"}}     # "x\\x1b": not a name
    calls = []
    s = Services(etc_dir="/nonexistent", system=lambda: calls.append(1) or {"tcp": {}})
    for port in range(20000, 20100):
        s.name(port, 6)
    assert calls == [1]


def test_package_data_read_from_inside_a_zip(tmp_path):
    """The .pyz case: ``resources.get_data`` goes through zipimport's loader,
    and does so without importing pkgutil (or typing, which it pulls in)."""
    import subprocess
    import sys

    from tests.routerpy.lightenv import build_pyz
    pyz = build_pyz(str(tmp_path))          # scripts/build_pyz.py, as a release is built
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import flowtop.services as s\n"
            "assert s.__file__.startswith(%r), s.__file__\n"
            "print(s.load_conf('tcp', etc_dir='/nonexistent')[443])\n"
            "print(sorted(m for m in ('pkgutil', 'typing') if m in sys.modules))\n"
            % (pyz, pyz))
    r = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True,
                       text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["https", "[]"]
