"""jsontext.dumps against json.dumps (compact separators) over the values
the JSON outputs hold, and hostile strings that must go through json."""

import json
import os
import subprocess
import sys

import pytest

from flowtop.jsontext import dumps

VALUES = [
    None, True, False, 0, -1, 443, 2 ** 64, "", "tcp", "ESTABLISHED", "eth0.100", "a b%c'd",
    "quo\"te", "back\\slash", "tab\there", "nl\nx", "\x00", "\x1b[2J", "del\x7f", "caf\u00e9",
    "\u202eevil", "\U0001f600", "\ud800", 1.5, float("inf"), [], ["ASSURED", "SEEN_REPLY"],
    (1, "x"), {"helper": None, "labels": [1, 2], "master_src": "10.0.0.1"}, {1: "int key"},
    {"k\"ey": "v"}, [None, [True, {"a": []}]],
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_dumps_is_json_dumps_with_compact_separators(value):
    assert dumps(value) == json.dumps(value, separators=(",", ":"))


def test_plain_values_need_no_json_module():
    code = ("import sys; from flowtop.jsontext import dumps; "
            "dumps([None, True, 1, 'ESTABLISHED', {'helper': None}]); "
            "print('json' in sys.modules)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"
