"""contrib/: the systemd unit and the OpenWrt procd init script are valid
for their tools, and the flowtop command lines they run parse."""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from flowtop import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(REPO, "contrib", "systemd", "flowtop.service")
INIT = os.path.join(REPO, "contrib", "openwrt", "flowtop.init")


def test_systemd_analyze_verifies_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze")
    unit = tmp_path / "flowtop.service"
    unit.write_text(open(UNIT).read())
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    problems = [l for l in (run.stdout + run.stderr).splitlines()
                if "flowtop.service" in l and "/usr/bin/python3" not in l]
    assert run.returncode == 0 and not problems, run.stdout + run.stderr


def test_the_init_script_is_valid_shell():
    subprocess.run(["sh", "-n", INIT], check=True)


def _example_args(path, key):
    text = open(path).read()
    m = re.search(key + r"""\s*['"]?=?\s*['"]?([^'"\n]+)""", text)
    return shlex.split(m.group(1))


@pytest.mark.parametrize("path,key,fixed", [
    (UNIT, "FLOWTOP_ARGS", ["--quiet"]),
    (INIT, "option args", ["--quiet"]),
])
def test_the_documented_command_lines_parse_as_headless_exports(path, key, fixed):
    opts = cli.parse(fixed + _example_args(path, key))
    assert opts.quiet and opts.ipfix and opts.metrics
