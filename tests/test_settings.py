"""Settings that stay (flowtop.settings): where the file is, what it may
set, that the command line wins, and that scripts' outputs ignore it."""

import io
import os

import pytest

from flowtop import cli, settings
from flowtop.views.state import ViewState


def test_the_file_is_under_xdg_config_home_else_dot_config():
    assert settings.rc_path(None, {"XDG_CONFIG_HOME": "/x/cfg"}, "/home/u") == \
        "/x/cfg/flowtop/flowtoprc"
    assert settings.rc_path(None, {}, "/home/u") == "/home/u/.config/flowtop/flowtoprc"
    assert settings.rc_path(None, {"XDG_CONFIG_HOME": "rel"}, "/home/u") == \
        "/home/u/.config/flowtop/flowtoprc"                      # relative: invalid per XDG
    assert settings.rc_path("/etc/my.rc", {"XDG_CONFIG_HOME": "/x"}) == "/etc/my.rc"


def test_parse_takes_known_names_and_warns_once_per_bad_value():
    warnings = []
    got = settings.parse("""
# comment
view = host
sort = +bytes
bits = yes
wide=no
threshold = 10k
interval = 2
protocols = tcp, udp
filter = dport=443 and dst=10.0.0.0/8
future_option = whatever
sort_bad
units = furlongs
filter = dst=1.2.3
age = \x1b[2J
""", warnings.append)
    assert got == {"view": "host", "sort": "+bytes", "bits": True, "wide": False,
                   "threshold": 10000.0, "interval": 2.0,
                   "protocols": frozenset({"tcp", "udp"}),
                   "filter": "dport=443 and dst=10.0.0.0/8"}
    assert len(warnings) == 3 and all("\x1b" not in w for w in warnings)
    assert "units" in warnings[0] and "column 5" in warnings[1]


def opts_with(rc_text, argv, tmp_path, monkeypatch):
    cfg = tmp_path / "cfg"
    (cfg / "flowtop").mkdir(parents=True, exist_ok=True)
    (cfg / "flowtop" / "flowtoprc").write_text(rc_text)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    return cli.parse(argv)


def test_start_up_reads_the_file_and_the_command_line_wins(tmp_path, monkeypatch):
    rc = "view = host\nsort = +bytes\nunits = iec\nfilter = proto=tcp\nloopback = yes\n"
    o = opts_with(rc, [], tmp_path, monkeypatch)
    assert (o.view, o.sort, o.units, o.filter, o.loopback) == \
        ("host", "+bytes", "iec", "proto=tcp", True)
    o = opts_with(rc, ["--sort", "rate", "--view", "flows", "--filter", "dport=22", "-T"],
                  tmp_path, monkeypatch)
    assert (o.view, o.sort, o.filter, o.units) == ("flows", "rate", "dport=22", "iec")


def test_a_saved_protocol_choice_gives_way_to_protocol_flags(tmp_path, monkeypatch):
    o = opts_with("protocols = udp\n", ["-T"], tmp_path, monkeypatch)
    assert o.protocols == frozenset({"tcp"})
    o = opts_with("protocols = udp\n", [], tmp_path, monkeypatch)
    assert o.protocols == frozenset({"udp"})


@pytest.mark.parametrize("argv", [["--json"], ["--csv", "--once"], ["--json", "--once"],
                                  ["--metrics-file", "/tmp/x.prom"]])
def test_script_outputs_ignore_the_file(tmp_path, monkeypatch, argv):
    o = opts_with("view = host\nfilter = proto=tcp\n", argv, tmp_path, monkeypatch)
    assert o.view == "flows" and o.filter is None


def test_rc_option_names_the_file(tmp_path, monkeypatch):
    p = tmp_path / "mine.rc"
    p.write_text("view = country\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    assert cli.parse(["--rc", str(p)]).view == "country"


def test_what_save_writes_comes_back_as_the_same_view_state(tmp_path):
    st = ViewState(cli.parse(["--rc", str(tmp_path / "absent")]))
    st.view, st.sort, st.reverse, st.units, st.bits = "process", "bytes", True, "raw", True
    st.filter, st.show_src, st.wide, st.age = "proc~fire* or dport=443", True, True, "seconds"
    st.toggle_group("U")
    st.toggle_family("6")
    st.threshold, st.interval, st.loopback = 1250.0, 2.0, True
    path = str(tmp_path / "sub" / "flowtoprc")
    assert settings.save(st, path) == "settings saved to %s" % path
    back = ViewState(cli.parse(["--rc", path]))
    for field in ("view", "sort", "reverse", "units", "bits", "filter", "show_src", "wide",
                  "age", "hidden_groups", "hidden_families", "threshold", "interval",
                  "loopback"):
        assert getattr(back, field) == getattr(st, field), field


def test_save_says_why_it_could_not(tmp_path):
    st = ViewState(cli.parse(["--rc", str(tmp_path / "absent")]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = settings.save(st, str(blocker / "flowtoprc"))
    assert line.startswith("cannot save settings to ") and "\n" not in line
    assert os.listdir(str(tmp_path)) == ["file"]
