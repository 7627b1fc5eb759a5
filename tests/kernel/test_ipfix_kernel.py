"""``flowtop --ipfix`` against real collectors, on a NAT router in namespaces.

flowtop runs in the router of ``tests.exportutil.NatTopology`` and exports
to Debian's nfcapd (nfdump) on the router's loopback; nfcapd repeats every
datagram to a capture socket, whose stream libfixbuf's ipfixDump must read
without complaint, and pmacct's nfacctd decodes the process elements.
``conntrack -L``/``-D`` in the router are the independent truth: the delta
counters nfdump received, summed per direction, equal the kernel's final
counters.  Every collector runs inside the test's namespaces, on its own port.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests import ctparse
from tests.exportutil import (CLIENT4, CLIENT6, ROUTER_S4, SERVER4, SERVER6, UDP_PORT,
                              NatTopology, wait_for)
from tests.nsutil import REPO, kernel_ready

_READY, _WHY = kernel_ready()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(not _READY, reason=_WHY or "no kernel")]

NFCAPD_PORT, CAPTURE_PORT = 19995, 19996

# Receives what nfcapd repeats and writes it as an IPFIX file (RFC 5655: messages back to back).
CAPTURE = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[2])))
print("ready", flush=True)
with open(sys.argv[1], "wb") as out:
    while True:
        d = s.recv(65535)
        if d == b"stop": break
        out.write(d); out.flush()
"""


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("needs %s (scripts/test-deps.sh installs them)" % " ".join(missing))


def _stop(p, sig=signal.SIGTERM, timeout=20):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()


def _ct_entries(text):
    return [e for e in ctparse.parse(text) if e["orig"].get("src") in (CLIENT4, CLIENT6)]


@pytest.fixture(scope="module")
def exported():
    """One run: traffic through the router while flowtop exports to nfcapd;
    returns nfdump's records, the kernel's entries, the capture, names."""
    _need("nfcapd", "nfdump")
    tmp = tempfile.mkdtemp(prefix="i14-ipfix-")
    os.chmod(tmp, 0o755)
    flowdir = os.path.join(tmp, "flows")
    os.mkdir(flowdir)
    capfile = os.path.join(tmp, "stream.ipfix")
    with NatTopology() as t:
        r = t.router
        t.start_traffic()
        cap = r.popen(sys.executable, "-c", CAPTURE, capfile, CAPTURE_PORT,
                      stdout=subprocess.PIPE, text=True)
        assert cap.stdout.readline().strip() == "ready"
        nfcapd = r.popen("nfcapd", "-w", flowdir, "-p", NFCAPD_PORT, "-b", "127.0.0.1",
                         "-t", "3600", "-I", "i14", "-R", "127.0.0.1/%d" % CAPTURE_PORT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        started = time.time()
        env = dict(os.environ, PYTHONPATH=REPO)
        flowtop = r.popen(sys.executable, "-m", "flowtop", "--ipfix",
                          "127.0.0.1:%d" % NFCAPD_PORT, "--ipfix-active-timeout", "1",
                          "--ipfix-domain", "214", "-n", "-G",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(1.0)
        sports = {"tcp4": t.send("tcp4"), "tcp6": t.send("tcp6"),
                  "udp4": t.send("udp4 300"), "udp6": t.send("udp6 200")}
        t.ping(4)
        t.ping(6)
        time.sleep(2.0)                  # periodic records go out (active timeout 1 s)
        t.send("udp4 500")               # more bytes on the same flows: deltas
        t.send("udp6 100")
        time.sleep(1.5)
        deleted = r.run("conntrack", "-D", "-f", "ipv6", "-p", "udp", "--orig-port-dst",
                        UDP_PORT, "-o", "extended,id").stdout
        time.sleep(1.0)                  # its final record goes out on the DESTROY event
        listed = r.conntrack_list()
        out, err = _stop(flowtop)
        ended = time.time()
        time.sleep(0.5)
        _stop(nfcapd)
        r.run(sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, "
              "socket.SOCK_DGRAM).sendto(b'stop', ('127.0.0.1', %d))" % CAPTURE_PORT)
        cap.wait(10)
        names = {"rc0": t.ifindex("rc0"), "rs0": t.ifindex("rs0")}
        nfdump = subprocess.run(["nfdump", "-R", flowdir, "-o", "json"], capture_output=True,
                                text=True, env=dict(os.environ, TZ="UTC"), check=True).stdout
        yield {"records": json.loads(nfdump), "listed": _ct_entries(listed),
               "deleted": _ct_entries(deleted), "sports": sports, "started": started,
               "ended": ended, "flowtop_err": err, "ifindex": names, "capfile": capfile,
               "router": r}
    shutil.rmtree(tmp, ignore_errors=True)


def _key(rec):
    """(proto, src, dst, sport or ICMP type, dport or ICMP code) of an nfdump record."""
    src = rec.get("src4_addr") or rec.get("src6_addr")
    dst = rec.get("dst4_addr") or rec.get("dst6_addr")
    if "icmp_type" in rec:
        return (rec["proto"], src, dst, rec["icmp_type"], rec["icmp_code"])
    return (rec["proto"], src, dst, rec.get("src_port"), rec.get("dst_port"))


def _sums(records):
    """_key -> [bytes, packets, number of records]."""
    sums = {}
    for rec in records:
        s = sums.setdefault(_key(rec), [0, 0, 0])
        s[0] += rec.get("in_bytes", 0)
        s[1] += rec.get("in_packets", 0)
        s[2] += 1
    return sums


# conntrack keeps an ICMP flow's request type; its answers are these
_ICMP_ANSWER = {("icmp", 8): 0, ("icmpv6", 128): 129}


def _direction_keys(e):
    o, r = e["orig"], e["reply"]
    if e["proto"] in ("icmp", "icmpv6"):
        answer = _ICMP_ANSWER[(e["proto"], o["type"])]
        return ((e["l4proto"], o["src"], o["dst"], o["type"], o["code"]),
                (e["l4proto"], r["src"], r["dst"], answer, o["code"]))
    return ((e["l4proto"], o["src"], o["dst"], o["sport"], o["dport"]),
            (e["l4proto"], r["src"], r["dst"], r["sport"], r["dport"]))


def test_every_forwarded_flow_arrives_with_the_kernels_final_counters(exported):
    sums = _sums(exported["records"])
    kernel = exported["listed"] + exported["deleted"]
    protos = {(e["family"], e["proto"]) for e in kernel}
    assert protos == {("ipv4", "tcp"), ("ipv6", "tcp"), ("ipv4", "udp"), ("ipv6", "udp"),
                      ("ipv4", "icmp"), ("ipv6", "icmpv6")}, protos
    for e in kernel:
        okey, rkey = _direction_keys(e)
        assert sums.get(okey, [None] * 2)[:2] == [e["orig"]["bytes"], e["orig"]["packets"]], (
            okey, sums.get(okey), e)
        assert sums.get(rkey, [None] * 2)[:2] == [e["reply"]["bytes"], e["reply"]["packets"]], (
            rkey, sums.get(rkey), e)


def test_nat_is_exported_as_post_nat_addresses_and_ports(exported):
    nat4 = [r for r in exported["records"] if r.get("src4_addr") == CLIENT4]
    assert nat4
    for rec in nat4:
        assert (rec["src4_xlt_ip"], rec["dst4_xlt_ip"]) == (ROUTER_S4, SERVER4), rec
        if rec["proto"] in (6, 17):
            assert int(rec["dst_xlt_port"]) == rec["dst_port"], rec
    back = [r for r in exported["records"] if r.get("src4_addr") == SERVER4]
    assert back and all(r["dst4_xlt_ip"] == CLIENT4 for r in back)
    assert not any("src6_xlt_ip" in r for r in exported["records"])     # IPv6 not NAT'ed


def test_the_udp_flows_were_reported_more_than_once_with_deltas(exported):
    sums = _sums(exported["records"])
    for e in exported["listed"] + exported["deleted"]:
        if e["proto"] == "udp":
            okey, _ = _direction_keys(e)
            assert sums[okey][2] >= 2, (okey, sums[okey])


def test_the_deleted_flow_ends_with_its_destroy_event(exported):
    (gone,) = exported["deleted"]
    okey, _ = _direction_keys(gone)
    recs = [r for r in exported["records"] if _key(r) == okey]
    assert sum(r["in_bytes"] for r in recs) == gone["orig"]["bytes"]
    # its last record ended when it was deleted, long before flowtop stopped
    assert max(_epoch(r["last"]) for r in recs) < exported["ended"] - 0.5


def test_interfaces_directions_and_times_are_the_routers(exported):
    idx = exported["ifindex"]
    lo, hi = exported["started"] - 1, exported["ended"] + 1
    seen = 0
    for rec in exported["records"]:
        src = rec.get("src4_addr") or rec.get("src6_addr")
        if src in (CLIENT4, CLIENT6):
            assert (rec["input_snmp"], rec["output_snmp"]) == (idx["rc0"], idx["rs0"]), rec
            seen += 1
        elif src in (SERVER4, SERVER6):
            assert (rec["input_snmp"], rec["output_snmp"]) == (idx["rs0"], idx["rc0"]), rec
        else:
            continue
        first = _epoch(rec["first"])
        last = _epoch(rec["last"])
        assert first <= last + 0.001, rec
        assert lo <= last <= hi, rec
    assert seen >= 6


def _epoch(text):
    import calendar
    date, _, frac = text.partition(".")
    t = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%S"))
    return t + (int(frac) / 1000.0 if frac else 0.0)


def test_ipfixdump_reads_the_captured_stream_without_complaint(exported):
    _need("ipfixDump")
    size = os.path.getsize(exported["capfile"])
    assert size > 0
    run = subprocess.run(["ipfixDump", "--in", exported["capfile"]], capture_output=True,
                         text=True, timeout=60)
    print(run.stdout[-3000:], run.stderr[-2000:])
    assert run.returncode == 0, run.stderr
    assert "sequence" not in run.stderr.lower() and "error" not in run.stderr.lower(), run.stderr
    assert "warning" not in (run.stdout + run.stderr).lower()


NFACCTD_PORT = 19997
# pmacct's custom primitives: the ntop process elements flowtop sends (PEN 35632)
PRIMITIVES = """\
name=src_proc_name field_type=35632:169 len=vlen semantics=str
name=src_proc_pid field_type=35632:168 len=4 semantics=u_int
name=dst_proc_name field_type=35632:376 len=vlen semantics=str
name=dst_proc_pid field_type=35632:375 len=4 semantics=u_int
"""
NFACCTD_CONF = """\
daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: %d
aggregate_primitives: %s
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto, src_proc_name, src_proc_pid, \
dst_proc_name, dst_proc_pid
print_output: json
print_output_file: %s
print_refresh_time: 1
print_output_file_append: true
"""


def test_nfacctd_decodes_the_process_elements_of_local_flows(tmp_path):
    _need("nfacctd")
    from tests.nsutil import Netns, populate
    os.chmod(str(tmp_path), 0o755)
    prim, conf, out = tmp_path / "prim.lst", tmp_path / "nfacctd.conf", tmp_path / "out.json"
    prim.write_text(PRIMITIVES)
    conf.write_text(NFACCTD_CONF % (NFACCTD_PORT, prim, out))
    with Netns("i14p") as ns:
        ports = populate(ns)
        traffic_pid = ns.procs[0].pid
        acct = ns.popen("nfacctd", "-f", str(conf), stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
        time.sleep(1.0)
        flowtop = ns.popen(sys.executable, "-m", "flowtop", "--ipfix",
                           "127.0.0.1:%d" % NFACCTD_PORT, "--ipfix-active-timeout", "1",
                           "-n", "-G", env=dict(os.environ, PYTHONPATH=REPO),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.0)                  # records at the 1 s active timeout, then at exit
        _stop(flowtop)
        time.sleep(0.5)
        log = _stop(acct, signal.SIGINT)[0]    # nfacctd writes its cache out as it stops
        assert wait_for(lambda: out.exists() and b"nfacctd" in out.read_bytes(), 10), log
        rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    tcp4 = [r for r in rows if r["ip_proto"] == "tcp" and r["port_src"] == ports["tcp4"]]
    assert tcp4, rows
    for r in tcp4:              # both ends are the traffic child
        assert (r["src_proc_name"], int(r["src_proc_pid"])) == ("python3", traffic_pid), r
        assert (r["dst_proc_name"], int(r["dst_proc_pid"])) == ("python3", traffic_pid), r
    to_collector = [r for r in rows if r["port_dst"] == NFACCTD_PORT]
    assert to_collector and all(r["dst_proc_name"] == "nfacctd" for r in to_collector), rows
    assert all(int(r["dst_proc_pid"]) == acct.pid for r in to_collector), (acct.pid, rows)
    pings = [r for r in rows if r["ip_proto"] == "icmp"]
    assert pings and all(r["src_proc_name"] == "" for r in pings)       # no process: left out
