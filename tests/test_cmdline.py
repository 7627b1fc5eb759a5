"""cmdline.read (argv without argparse) against argparse itself, over every
option cli defines: the same namespace, or None where argparse must read."""

import contextlib
import io
import os
import random
import subprocess
import sys

import pytest

from flowtop import cli
from flowtop.cmdline import Recorder, read

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A valid value per option that takes one (choices give their own).
SAMPLES = {
    "interval": ["2", "0.5"], "sort": ["bytes", "+age"], "threshold": ["10k", "2Mi"],
    "geoip_db": ["/x.mmdb"], "geoip_conf": ["/etc/g.conf"], "geoip_dir": ["/tmp"],
    "in_iface": ["eth0", "vlan+"], "out_iface": ["wan"], "record": ["/tmp/r"],
    "replay": ["/tmp/r"], "ipfix": ["127.0.0.1:4739"], "ipfix_active_timeout": ["30"],
    "ipfix_mtu": ["1500", "0x400"], "ipfix_domain": ["7"], "ipfix_template_refresh": ["5"],
    "metrics": [":9100"], "metrics_file": ["/tmp/m"], "syslog": ["127.0.0.1:514"],
    "delete": ["proto tcp"], "filter": ["port 443"], "leases": ["/tmp/l"],
    "ethers": ["/tmp/e"], "rc": ["/tmp/rc"],
}
BAD = {"interval": "-1", "sort": "nope", "threshold": "lots", "ipfix_mtu": "9",
       "ipfix_domain": "x", "units": "bogus", "age": "old", "view": "nope"}


def options():
    rec = Recorder()
    cli.define(rec)
    return rec


def argparse_ns(argv):
    """vars() of argparse's namespace, or None where it exits (an error, help)."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            return vars(cli.build_parser().parse_args(argv))
    except SystemExit:
        return None


def same(argv):
    """read's answer equals argparse's where it gives one; returns whether it did."""
    got = read(cli.define, argv)
    want = argparse_ns(argv)
    if got is None:
        return False
    assert want is not None, argv          # argparse refuses what read accepted
    assert vars(got) == want, argv
    return True


def test_no_options_reads_as_argparse_defaults():
    assert same([])


def test_every_option_alone_reads_as_argparse_does():
    rec = options()
    read_by_us = 0
    for flag, spec in rec.options.items():
        if spec.action is None:
            assert not same([flag])         # help, version: argparse's
            continue
        if spec.takes_value():
            values = list(spec.choices or SAMPLES[spec.dest])
            for v in values:
                read_by_us += same([flag, v])
                if flag.startswith("--"):
                    read_by_us += same([flag + "=" + v])
                else:
                    read_by_us += same([flag + v])
        else:
            read_by_us += same([flag])
    assert read_by_us > len(rec.options)     # most were read here, not handed over


@pytest.mark.parametrize("argv", [
    ["--once", "--json", "-n", "-G"], ["-nG", "-t", "1"], ["-nGt1"], ["--once", "-nG4Tu"],
    ["--json", "--once", "--no-iface", "--no-process", "--no-sysctl"],
    ["--geoip-db", "/a", "--geoip-db", "/b", "--leases", "/l"], ["--sort=+bytes", "-P", "-s"],
])
def test_a_routers_command_lines_are_read_without_argparse(argv):
    assert same(argv)


@pytest.mark.parametrize("argv", [
    ["--once", "--jso"], ["--he"], ["-h"], ["--help"], ["--version"], ["-v"], ["-n", "--version"],
    ["--json", "--csv"], ["--record", "/r", "--replay", "/r"], ["-t"], ["-t", "-1"], ["-t=1"],
    ["--once=yes"], ["--"], ["foo"], ["-"], ["--units", "bogus"], ["--sort", "nope"],
    ["-x"], ["--no-such-option"], ["-t", "--once"], ["--in-iface", "-n"], ["--filter", "-x"],
])
def test_what_argparse_must_answer_is_handed_to_it(argv):
    assert read(cli.define, argv) is None


def test_random_command_lines_read_as_argparse_does():
    """Options, values (good and bad), repeats and short clusters, at random."""
    rec = options()
    flags = sorted(f for f, s in rec.options.items() if s.action is not None)
    rng = random.Random(12)
    read_by_us = 0
    for _ in range(600):
        argv = []
        cluster = False                 # argv[-1] is short flags only: -n, -nG
        for _ in range(rng.randint(1, 6)):
            flag = rng.choice(flags)
            spec = rec.options[flag]
            if not spec.takes_value():
                if flag[1] != "-" and cluster and rng.random() < 0.5:
                    argv[-1] += flag[1]         # -n then -G: -nG
                else:
                    argv.append(flag)
                    cluster = flag[1] != "-"
                continue
            cluster = False
            good = list(spec.choices or SAMPLES[spec.dest])
            value = BAD.get(spec.dest, "x") if rng.random() < 0.1 else rng.choice(good)
            argv += [flag, value] if rng.random() < 0.7 else [flag + ("=" if flag[1] == "-"
                                                                      else "") + value]
        read_by_us += same(argv)
    assert read_by_us > 200


def test_parse_without_argparse_gives_the_options_parse_with_it_gave(monkeypatch):
    argv = ["--once", "--json", "-nG", "--sort", "+bytes", "-t", "2", "--geoip-db", "/a"]
    fast = cli.parse(argv)
    monkeypatch.setattr("flowtop.cmdline.read", lambda define, argv: None)
    assert cli.parse(argv) == fast


def test_an_error_after_reading_still_prints_argparses_usage():
    r = subprocess.run([sys.executable, "-m", "flowtop", "--once", "--active"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("usage: flowtop"), r.stderr
    assert "--active and --threshold need rates" in r.stderr
