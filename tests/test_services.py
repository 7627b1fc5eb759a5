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


def test_services_lines_are_read_as_the_services_pattern_reads_them():
    """parse_services reads without re what ``NAME\\s+PORT/PROTO\\b`` matched
    (the pattern it replaced, kept here as the reference), on this host's
    /etc/services and on random lines of the characters that matter."""
    import os
    import random
    import re
    from flowtop.services import parse_services
    from flowtop.text import sanitize
    rx = re.compile(r"^([A-Za-z0-9][\w.+-]*)\s+(\d+)/(tcp|udp|sctp|dccp)\b")

    def reference(text):
        out = {}
        for line in text.splitlines():
            m = rx.match(line.split("#", 1)[0].strip())
            if m and 0 < int(m.group(2)) < 65536:
                out.setdefault(m.group(3), {}).setdefault(int(m.group(2)),
                                                          sanitize(m.group(1), 16))
        return out

    if os.path.exists("/etc/services"):
        with open("/etc/services", encoding="utf-8", errors="replace") as f:
            text = f.read()
        assert parse_services(text) == reference(text)
    rng = random.Random(4)
    pieces = list("aX09_.+-/ \t#\u00e9\u0663\u00b2\u00a0\x1b") + [
        "tcp", "udp", "sctp", "dccp", "tcpx", "/tcp", "80", "65536", "http", "80/udp"]
    matched = 0
    for _ in range(20000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 7)))
        want = reference(line)
        matched += bool(want)
        assert parse_services(line) == want, repr(line)
    assert matched > 30


def test_one_protocols_services_are_those_of_the_whole_database():
    """Services reads /etc/services for the protocol asked alone (the live view's
    first rows named udp ports: 3.8 M instructions for the whole file, 1.1 M for its
    udp lines): the same table as the whole file's."""
    import os
    import random
    from flowtop.services import parse_services
    texts = []
    if os.path.exists("/etc/services"):
        with open("/etc/services", encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    rng = random.Random(5)
    pieces = ["x", "9", " ", "\t", "/", "#", "tcp", "udp", "sctp", "dccp", "udpx", "/udp", "53"]
    texts += ["\n".join("".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
                        for _ in range(50)) for _ in range(400)]
    for text in texts:
        whole = parse_services(text)
        for proto in ("tcp", "udp", "sctp", "dccp"):
            assert parse_services(text, (proto,)) == (
                {proto: whole[proto]} if proto in whole else {}), (proto, text)


def test_a_port_of_one_protocol_reads_the_services_of_that_protocol_only(monkeypatch):
    import flowtop.services as services
    asked = []

    def load_system(path="/etc/services", protos=None):
        asked.append(protos)
        return {p: {40000 + len(asked): "svc-" + p} for p in protos}
    monkeypatch.setattr(services, "load_system", load_system)
    s = services.Services(etc_dir="/nonexistent", load=lambda proto, etc: {})
    assert s.name(40001, 17) == "svc-udp" and asked == [("udp",)]
    assert s.name(40009, 17) is None and asked == [("udp",)]          # read once
    assert s.name(40002, 6) == "svc-tcp" and asked == [("udp",), ("tcp",)]
    assert s.names(17) == {40001: "svc-udp"} and len(asked) == 2
