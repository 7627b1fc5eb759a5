"""Start-up on a router CPU: bytecode in the .pyz, and only the modules an output needs.

A mipsel router CPU takes 20-48 s for ``flowtop.pyz --version`` when the archive
holds only sources (zipimport compiles every module at every start, and caches
nothing), so ``scripts/build_pyz.py --python X.Y`` ships .pyc for the router's
Python; and ``--once -n -G --no-iface --no-process`` must not load the curses,
DNS, GeoIP, route or sock_diag code it never uses.  Run under the python3-light
blocker; scripts/ci-pythons.sh runs this file under Python 3.9, 3.10, 3.12 and 3.13.
"""

import subprocess
import sys

import pytest

from tests.routerpy import lightenv as L

# Runs flowtop (argv after the output path) and writes the loaded module names there.
MODULES = r"""
import atexit, runpy, sys
out = sys.argv[1]
def dump():
    with open(out, "w") as f:
        f.write("\n".join(sorted(sys.modules)))
atexit.register(dump)
sys.argv = ["flowtop"] + sys.argv[2:]
runpy.run_module("flowtop", run_name="__main__", alter_sys=True)
"""

NOT_FOR_THE_LEAN_PATH = ["curses", "_curses", "flowtop.views.screen", "flowtop.enrich.dns",
                         "flowtop.enrich.geoip", "maxminddb", "flowtop.netlink.route",
                         "flowtop.enrich.iface", "flowtop.netlink.sockdiag",
                         "flowtop.enrich.process"]
LEAN = ["--once", "-n", "-G", "--no-iface", "--no-process", "--no-sysctl"]


# The bytecode's tests (a code member for the router's Python, zipimport's fallback):
# tests/routerpy/test_pyzimport.py.


def test_pyz_without_python_holds_sources_only(tmp_path):
    import zipfile
    pyz = L.build_pyz(str(tmp_path))
    with zipfile.ZipFile(pyz) as z:
        names = z.namelist()
    assert "flowtop/cli.py" in names and not [n for n in names if n.endswith(".pyc")]


def _loaded(tmp_path, argv, ns=None, site=True):
    out = str(tmp_path / "modules.txt")
    cmd = [sys.executable] + ([] if site else ["-S"]) + ["-c", MODULES, out] + argv
    if ns is not None:
        cmd = ns.argv(*cmd)
    r = subprocess.run(cmd, env=L.env(), cwd=L.REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    with open(out) as f:
        return set(f.read().split()), r.stdout


def test_version_alone_loads_only_the_entry_point_and_prints_what_argparse_prints(tmp_path):
    mods, out = _loaded(tmp_path, ["--version"])
    assert sorted(m for m in mods if m.startswith("flowtop")) == ["flowtop", "flowtop.entry"]
    assert "argparse" not in mods
    # with anything else on the line argparse answers, and prints the same line
    mods, parsed = _loaded(tmp_path, ["-n", "--version"])
    assert out == parsed and out.startswith("flowtop ")
    ours = sorted(m for m in mods if m.startswith("flowtop"))
    # the parser is cli, its option groups (optgroups) and the value checks and names
    # (the sorts too) they share with flowtoprc (values); no view-model (views.state)
    # (cmdline hands --version to argparse); the garbage collector's pause at the start
    # (runtime); Options' class (tuples)
    assert ours == ["flowtop", "flowtop.cli", "flowtop.cmdline", "flowtop.entry",
                    "flowtop.optgroups", "flowtop.runtime", "flowtop.tuples",
                    "flowtop.values"], ours


def test_parsing_the_options_loads_no_shutil(tmp_path):
    """argparse's help formatter imports shutil (and its bz2, lzma, fnmatch) for the
    terminal's width at every add_argument: 1.0 s of a mipsel router's 18 s to the
    live view's first rows.  The width is read without it, the same way."""
    out = str(tmp_path / "modules.txt")
    # -S: this machine's site (an editable install's finder) imports shutil itself
    r = subprocess.run([sys.executable, "-S", "-c", MODULES, out, "-n", "--version"],
                       env=L.env(blocked=False), cwd=L.REPO, capture_output=True, text=True,
                       timeout=120)
    with open(out) as f:
        mods = set(f.read().split())
    assert r.stdout.startswith("flowtop ") and "argparse" in mods
    assert "shutil" not in mods


def test_the_live_view_s_modules_load_no_json_and_no_shutil():
    """json (0.5 s of a mipsel start) only where JSON is read or written: a recording's
    header, the JSON outputs; not the live view's start."""
    code = ("import sys; import flowtop.cli, flowtop.main, flowtop.collector, "
            "flowtop.views.screen; print(sorted({'json', 'shutil'} & set(sys.modules)))")
    r = subprocess.run([sys.executable, "-S", "-c", code], env=L.env(blocked=False),
                       cwd=L.REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_live_view_draws_and_quits_without_locale_py_and_copy(tmp_path):
    """locale.py's import costs 4.4 M instructions more than the C module _locale's
    (19 M with its re, which a UTF-8 screen's sort mark brings anyway: text's
    patterns), ~0.07 s of a mipsel start before the first rows: the screen sets
    the locale and reads its codeset through _locale.  copy (with weakref, 4.7 M)
    only with a delete key's group question (act, imported at the start)."""
    status, mods = _live_modules(tmp_path, "i12hlocale")
    assert status == 0 and "flowtop.views.screen" in mods and "_locale" in mods
    assert not {"locale", "copy"} & mods, sorted({"locale", "copy"} & mods)


def _live_modules(tmp_path, name):
    """The live view over a recording, drawn and quit: its exit status and modules."""
    from tests.tmuxutil import Tmux, pane_command, read_exit
    out = str(tmp_path / "modules.txt")
    # -S: this machine's site imports locale itself
    argv = ["env", "TERM=xterm-256color", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
            "PYTHONPATH=" + L.REPO, sys.executable, "-S", "-c", MODULES, out, "--no-sysctl",
            "--replay", L.MIXED, "-n", "-G", "--loopback"]
    with Tmux(name) as tm:
        tm.start(pane_command(argv, str(tmp_path)), 120, 30, str(tmp_path))
        tm.wait_for(lambda ls: " flows" in ls[0] and "RATE_TX\u25bc" in ls[2], 30,
                    "the recording on screen, its sort column marked in UTF-8")
        tm.send("q")
        status, _ = read_exit(str(tmp_path), 30)
    with open(out) as f:
        return status, set(f.read().split())


def test_the_live_view_of_flows_draws_and_quits_without_the_once_aggregate_and_filter_modules(
        tmp_path):
    """Each flowtop module is ~17 ms of a mipsel router's start (-X importtime) before
    the first rows: the aggregate views' four (4 M instructions; their titles are
    values'), --once's (main's DNS_WAIT) and the filter's fields (with a filter typed)
    wait until a key or an option asks for them."""
    status, mods = _live_modules(tmp_path, "i12slean")
    later = {"flowtop.once", "flowtop.views.aggregate", "flowtop.views.groups",
             "flowtop.views.remotes", "flowtop.views.procgroups", "flowtop.views.filterfields"}
    assert status == 0 and "flowtop.views.screen" in mods
    assert not later & mods, sorted(later & mods)


# An event reader over a quiet socket (its timeouts), then stopped: which modules it loaded.
EVENT_THREAD = r"""
import sys
from flowtop.eventreader import EventReader
class Quiet:
    def settimeout(self, seconds):
        pass
    def close(self):
        pass
def read(sock):
    if len(timeouts) == 2:
        reader.stop()
    timeouts.append(1)
    raise TimeoutError("timed out")          # what socket.timeout is since 3.10
timeouts = []
before = set(sys.modules)
reader = EventReader(open_events=Quiet, read=read)
reader.start()
reader.join(30)
print(len(timeouts), reader.failure, sorted(set(sys.modules) - before))
"""


def test_the_event_thread_waits_out_timeouts_without_socket_py():
    """socket.py's import (its enums: 15 M instructions, 0.2-0.3 s on mipsel) ran in the
    event thread beside the live view's first dump, for ``socket.timeout`` alone."""
    r = subprocess.run([sys.executable, "-S", "-c", EVENT_THREAD], env=L.env(blocked=False),
                       cwd=L.REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    count, failure, loaded = r.stdout.split(" ", 2)
    assert (count, failure) == ("3", "None"), r.stdout
    assert "'socket'" not in loaded and "'_socket'" in loaded, loaded


@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_lean_replay_loads_no_optional_module(tmp_path, fmt):
    mods, out = _loaded(tmp_path, ["--replay", L.MIXED] + LEAN + fmt)
    assert out
    assert sorted(mods & set(NOT_FOR_THE_LEAN_PATH)) == []


# Every flowtop module the lean --once loads (issues 12 and 16): a new import on this
# path costs every router start (~50x this machine's time) and must be chosen.
LEAN_MODULES = {
    "": ["entry", "cli", "cmdline", "optgroups", "values", "text", "settings", "resources", "runtime", "main",
         "tuples",
         "once", "api", "sources", "recording", "sysctl", "handover", "services", "memo",
         "model", "enrich", "enrich.bundle",
         "netlink", "netlink.attrs", "netlink.conntrack", "netlink.ctdecoder",
         "netlink.ctnetlink", "netlink.errors", "netlink.nlmsg",
         "netlink.session", "netlink.socket", "netlink.uapi",
         "views", "views.writer"],
    "text": ["health", "views.state", "views.cells", "views.columns", "views.counts", "views.select",
             "views.oncetext", "views.rowtexts",    # (oncetext split at 420 lines)
             "table", "tablerows", "views.redact"],  # (JSON: no table, no redaction asked)
    "json": ["jsontext", "views.export", "views.record", "views.tail"],
}


@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_lean_once_loads_exactly_the_modules_its_output_needs(tmp_path, fmt):
    mods, out = _loaded(tmp_path, ["--replay", L.MIXED] + LEAN + fmt)
    assert out
    want = ["flowtop"] + ["flowtop." + m for m in
                          LEAN_MODULES[""] + LEAN_MODULES["json" if fmt else "text"]]
    assert sorted(m for m in mods if m.startswith("flowtop")) == sorted(want)
    # nor argparse (and the gettext, locale and shutil it pulls in): ~2.9 s of a
    # mipsel router's --once at 14 flows
    base, _ = _loaded(tmp_path, ["--version"])     # what the interpreter's site loads
    assert not (mods - base) & {"argparse", "gettext", "locale", "shutil"}, sorted(mods - base)


@pytest.mark.kernel
@pytest.mark.parametrize("fmt", [[], ["--json"]], ids=["text", "json"])
def test_lean_once_on_the_kernel_loads_no_optional_module(tmp_path, fmt):
    from tests.nsutil import Netns, kernel_ready, populate
    ok, why = kernel_ready()
    if not ok:
        pytest.skip(why)
    with Netns("i12lean") as ns:
        populate(ns)
        mods, out = _loaded(tmp_path, LEAN + fmt, ns=ns)
    assert len(out.splitlines()) >= 10, out
    assert sorted(mods & set(NOT_FOR_THE_LEAN_PATH)) == []
    # the stdlib modules it has no use for (each 0.1-0.3 s to import on mipsel, json
    # with its 7 patterns more): jsontext writes JSON, csv is the CSV output's,
    # the C module _socket does without socket.py's wrappers, _signal without
    # signal.py's enums; no pattern is compiled for printable ASCII (re, enum)
    with Netns("i12bare") as ns:      # -S: no site, whose imports would hide ours
        populate(ns)
        mods, _ = _loaded(tmp_path, LEAN + fmt, ns=ns, site=False)
    # (nor runpy's: on 3.9 its importlib.util brings typing, re and enum)
    base, _ = _loaded(tmp_path, ["--version"], site=False)
    unused = {"argparse", "gettext", "locale", "shutil", "csv", "copy", "socket",
              "selectors", "json", "re", "enum", "signal"}
    assert not (mods - base) & unused, sorted((mods - base) & unused)
    # the full default path does load them (the list above names real modules)
    with Netns("i12full") as ns:
        populate(ns)
        mods, _ = _loaded(tmp_path, ["--once", "--no-sysctl", "-n"] + fmt, ns=ns)
    assert "flowtop.netlink.route" in mods and "flowtop.enrich.process" in mods, sorted(mods)


# The garbage collector's state where the options are parsed and where the run begins.
GC_STATE = r"""
import gc, sys
import flowtop.cli as cli, flowtop.main as wiring
seen = []
parse, run_mode = cli.parse, wiring._run_mode
def parsing(argv=None):
    seen.append(("parse", gc.isenabled()))
    return parse(argv)
def running(*args):
    seen.append(("run", gc.isenabled(), gc.get_freeze_count() > 0))
    return run_mode(*args)
cli.parse, wiring._run_mode = parsing, running
sys.argv = ["flowtop"] + sys.argv[1:]
from flowtop.entry import run
try:
    run()
except SystemExit:
    pass
sys.stderr.write("%r %r\n" % (seen, gc.isenabled()))
"""


def test_the_command_starts_without_the_garbage_collector_and_runs_with_it_its_start_frozen():
    """The imports and set-up make ~100k objects that all live on; collections over them
    were 4.9 M of the live view's 150 M instructions to its first rows (valgrind).  The
    run itself has the collector, and the start's objects are never scanned again."""
    r = subprocess.run([sys.executable, "-S", "-c", GC_STATE, "--once", "--no-sysctl",
                        "--replay", L.MIXED, "-n", "-G"], env=L.env(blocked=False),
                       cwd=L.REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout, r.stderr
    assert r.stderr.strip() == "[('parse', False), ('run', True, True)] True", r.stderr
    # a command line that never runs (a bad option) leaves it on all the same
    r = subprocess.run([sys.executable, "-S", "-c", GC_STATE, "--no-such-option"],
                       env=L.env(blocked=False), cwd=L.REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.stderr.strip().endswith("[('parse', False)] True"), r.stderr
