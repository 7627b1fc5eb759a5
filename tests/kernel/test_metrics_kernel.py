"""``flowtop --metrics``/``--metrics-file`` in a populated namespace:
promtool accepts the exposition, the entry count is ``conntrack -C``'s,
per-CPU statistics are ``conntrack -S``'s, and byte totals stay after a
flow is deleted (counters are monotonic across flow ends)."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.nsutil import REPO, Netns, kernel_ready, populate

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

PORT = 19998


def _value(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    pat = r"(?m)^" + re.escape(name + ("{%s}" % want if labels else "")) + r" (\S+)$"
    m = re.search(pat, text)
    return None if m is None else float(m.group(1))


def test_metrics_pass_promtool_match_the_kernel_and_survive_flow_ends(tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("needs promtool (Debian package prometheus; scripts/test-deps.sh)")
    path = str(tmp_path / "flowtop.prom")
    with Netns("i14m") as ns:
        populate(ns)
        p = ns.popen(sys.executable, "-m", "flowtop", "--metrics", "127.0.0.1:%d" % PORT,
                     "--metrics-file", path, "-n", "-G", "-t", "0.2",
                     env=dict(os.environ, PYTHONPATH=REPO),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
        served = ns.run("curl", "-sf", "http://127.0.0.1:%d/metrics" % PORT).stdout
        check = ns.run("promtool", "check", "metrics", input=served, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        time.sleep(1.5)             # a dump after curl's own flow
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        assert _value(open(path).read(), "flowtop_conntrack_entries") == count
        max_ = int(ns.run("cat", "/proc/sys/net/netfilter/nf_conntrack_max").stdout)
        assert _value(served, "flowtop_conntrack_max") == max_
        stats = ns.run("conntrack", "-S").stdout
        for cpu, insert in re.findall(r"cpu=(\d+)\s.*?\binsert=(\d+)", stats):
            assert _value(served, "flowtop_conntrack_insert_total", cpu=cpu) == int(insert)
        before = _value(served, "flowtop_process_bytes_total", direction="reply",
                        process="python3")
        assert before and before >= 70000          # the TCP flow's 70,000-byte answer
        ns.run("conntrack", "-D", "-p", "tcp", "--orig-port-dst", "5001")
        time.sleep(1.5)
        after_text = open(path).read()
        check = ns.run("promtool", "check", "metrics", input=after_text, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        after = _value(after_text, "flowtop_process_bytes_total", direction="reply",
                       process="python3")
        assert after >= before, (before, after)
        assert _value(after_text, "flowtop_conntrack_entries") == count - 1
        p.terminate()
        p.communicate(timeout=20)


PROM_CONF = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: flowtop
    static_configs:
      - targets: ["127.0.0.1:%d"]
"""


def test_a_prometheus_server_in_the_namespace_scrapes_flowtop(tmp_path):
    import json
    if shutil.which("prometheus") is None:
        pytest.skip("needs prometheus (Debian package prometheus; scripts/test-deps.sh)")
    os.chmod(str(tmp_path), 0o777)
    conf = tmp_path / "prometheus.yml"
    conf.write_text(PROM_CONF % PORT)
    web = "127.0.0.1:19992"
    with Netns("i14q") as ns:
        populate(ns)
        ns.popen(sys.executable, "-m", "flowtop", "--metrics", "127.0.0.1:%d" % PORT, "-n", "-G",
                 "-t", "0.5", env=dict(os.environ, PYTHONPATH=REPO),
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ns.popen("prometheus", "--config.file=%s" % conf,
                 "--storage.tsdb.path=%s" % (tmp_path / "data"), "--web.listen-address=" + web,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def query(q):
            out = ns.run("curl", "-sf", "--get", "--data-urlencode", "query=" + q,
                         "http://%s/api/v1/query" % web, check=False).stdout
            try:
                res = json.loads(out)["data"]["result"]
            except (ValueError, KeyError):
                return None
            return float(res[0]["value"][1]) if res else None

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and query('up{job="flowtop"}') != 1.0:
            time.sleep(0.5)
        assert query('up{job="flowtop"}') == 1.0
        entries = None
        while time.monotonic() < deadline and entries is None:
            entries = query("flowtop_conntrack_entries")
            time.sleep(0.5)
        count = int(ns.run("conntrack", "-C").stdout.split()[0])
        # prometheus' and curl's own connections come and go: the count is near, not equal
        assert entries is not None and abs(entries - count) <= 10, (entries, count)
        assert query('sum(flowtop_flows{proto="tcp"})') >= 3
