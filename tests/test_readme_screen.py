"""The README's --once example is what flowtop prints for that command
(a recorded table, so anyone can rerun it): it cannot show columns that
no longer exist."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "$ python3 -m flowtop "


def readme_example():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n" + PROMPT) + 1
    block = text[start:text.index("```", start)].splitlines()
    argv = block[0][len(PROMPT):].split("#")[0].split()
    return argv, [l for l in block[1:] if l != "..."]


def test_the_readme_once_example_is_the_real_output():
    argv, shown = readme_example()
    assert "--replay" in argv and shown
    out = subprocess.run([sys.executable, "-m", "flowtop"] + argv, cwd=REPO, check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, TZ="UTC", PYTHONPATH=REPO)).stdout.splitlines()
    assert shown[:2] == out[:2], (shown[:2], out[:2])       # header and column titles
    missing = [l for l in shown[2:] if l not in out]
    assert not missing, (missing, out)
