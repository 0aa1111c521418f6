#!/usr/bin/env python3
"""End-to-end check of the firmware under QEMU: boots a cluster of nodes,
joins their UART1 links with a bus (every frame goes to every other node;
nodes drop frames addressed to another), and reads their EVENT lines.

Checks, each with a deadline:
  0. a node whose flash holds no record, started without `first_boot`,
     halts with exit code 8 (the cluster's nodes get `first_boot` on their
     first start only);
  1. one master is elected and every node names it;
  2. after the master's QEMU is killed, the others elect a new master
     with a higher fencing token;
  3. the killed node restarts from its flash file (incarnation goes up)
     and learns the current master;
  3b. a follower whose flash file was deleted, started with `rejoin`,
     follows the master and stands by (`rejoining=1`), and votes again
     (`rejoining=0`) after two hand-overs decide new instances;
  4. broken frames (too short, bad COBS, too long) and hostile ones (for
     another node, garbage packets) written onto a node's link are dropped
     and counted, and the cluster goes on.

Then, optionally: a soak (--soak, with --handover-every for hand-overs)
and a flash wear run (--wear SECONDS --failover-every SECONDS): the master's
QEMU is killed every so often and restarted from its flash file once a new
master is agreed; flash writes and page erases are summed over every node's
restarts and the life of a 10,000-cycle region at that rate is printed.

Usage: cluster_test.py [--nodes 3] [--base-port 7200] [--key HEX]
                       [--extra 'round_ms=150 backoff_ms=300'] [--soak SECONDS]
                       [--wear SECONDS [--failover-every 30]]
Needs a release build (run-node.sh builds one; this script starts QEMU with
NO_BUILD=1). Prints 'N passed, M failed' at the end; exit status 0 if all
passed.
"""
import argparse
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_NODE = os.path.join(HERE, "..", "run-node.sh")
EVENT = re.compile(r"^EVENT (\w+)((?: \w+=\S+)*)\s*$")


class Node:
    def __init__(self, node_id, members, port, workdir, key, extra, timeout=300):
        self.id = node_id
        self.timeout = timeout
        self.members = members
        self.port = port
        self.workdir = workdir
        self.key = key
        self.extra = extra
        self.proc = None
        self.launched = False  # later starts come back from the flash file
        self.sock = None
        self.out_buf = b""
        self.link_buf = b""
        self.events = []  # (time, name, {k: v})
        self.log = open(os.path.join(workdir, f"node-{node_id}.log"), "ab")

    def start(self, word=None):
        # `first_boot` on the first start only: a restart must find its record.
        first = word or ("" if self.launched else "first_boot")
        self.launched = True
        extra = " ".join(x for x in (f"key={self.key}" if self.key else "", self.extra, first)
                         if x)
        env = dict(os.environ, NO_BUILD="1", QEMU_TIMEOUT=str(self.timeout))
        self.proc = subprocess.Popen(
            [RUN_NODE, str(self.id), self.members, str(self.port), extra],
            cwd=self.workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)

    def command(self, line):
        """Types a command on the node's UART0 (QEMU's stdin)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        if self.sock:
            self.sock.close()
        self.sock = None
        # QEMU dies a little after the script that started it: until its
        # link port refuses connections, a restart could connect to the old one.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                break
            time.sleep(0.05)

    def last(self, name):
        for ev in reversed(self.events):
            if ev[1] == name:
                return ev[2]
        return None


def no_record_halts(workdir, port):
    """A node whose flash holds no record, started without `first_boot`,
    halts with exit code 8 and says why (a node that lost its flash must not
    start from nothing). Returns (exit code, whether the message was printed)."""
    d = os.path.join(workdir, "no-record")
    os.makedirs(d, exist_ok=True)
    env = dict(os.environ, NO_BUILD="1", QEMU_TIMEOUT="30")
    p = subprocess.run([RUN_NODE, "1", "1,2,3", str(port), ""], cwd=d, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return p.returncode, b"no record in flash" in p.stdout


def rejoin_check(bus, nodes, view, workdir, check):
    """Wipes a follower's flash, starts it with `rejoin`: it must follow the
    master while it stands by, and vote again once two hand-overs have
    decided instances past the ones it learned from a majority."""
    wiped = next(n for n in nodes if n.id != view[0])
    wiped.kill()
    os.remove(os.path.join(workdir, f"tenure-node-{wiped.id}.flash"))
    wiped.events.clear()
    wiped.start("rejoin")
    follows = wait_agreement(bus, nodes, 20)
    start = wiped.last("start")
    standby = stats_of(bus, [wiped]).get(wiped.id) or {}
    check("wiped node rejoins and follows",
          follows is not None and start is not None and start["incarnation"] == "1"
          and standby.get("rejoining") == "1",
          f"view={follows}, start={start}, rejoining={standby.get('rejoining')}")
    view = follows or view
    for _ in range(3):
        master = next(n for n in nodes if n.id == view[0])
        heir = next(n for n in nodes if n.id not in (master.id, wiped.id))
        master.command(f"handover {heir.id}")
        got = wait_agreement(bus, nodes, 10, min_token=view[1])
        if got is None:
            break
        view = got
        if (stats_of(bus, [wiped]).get(wiped.id) or {}).get("rejoining") == "0":
            break
    after = stats_of(bus, [wiped]).get(wiped.id) or {}
    check("rejoined node votes after new instances", after.get("rejoining") == "0",
          f"rejoining={after.get('rejoining')}, view={view}")


def destination(frame):
    """The envelope's destination: the first two COBS-decoded bytes, LE."""
    out = bytearray()
    i = 0
    while len(out) < 2 and i < len(frame):
        code = frame[i]
        if code == 0:
            return None
        out += frame[i + 1:i + code]
        i += code
        if code < 255 and len(out) < 2 and i < len(frame):
            out.append(0)
    return out[0] | out[1] << 8 if len(out) >= 2 else None


class Bus:
    """Joins the nodes' links. As a router (default) it reads each frame's
    destination and delivers it there (or to all for 0xFFFF); as a bus it
    copies every frame to every other node and lets them filter."""

    def __init__(self, nodes, broadcast_all=False):
        self.nodes = nodes
        self.broadcast_all = broadcast_all
        self.frames = 0

    def pump(self, seconds):
        """Moves frames and reads logs for `seconds`."""
        end = time.monotonic() + seconds
        sel = selectors.DefaultSelector()
        for n in self.nodes:
            if n.sock:
                sel.register(n.sock, selectors.EVENT_READ, ("link", n))
            if n.proc and n.proc.poll() is None:
                sel.register(n.proc.stdout, selectors.EVENT_READ, ("out", n))
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return
                for key, _ in sel.select(timeout=min(left, 0.05)):
                    kind, n = key.data
                    if kind == "link":
                        self._link(n, sel, key)
                    else:
                        self._out(n, sel, key)
        finally:
            sel.close()

    def _link(self, n, sel, key):
        try:
            data = n.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            sel.unregister(key.fileobj)
            return
        n.link_buf += data
        while b"\x00" in n.link_buf:
            frame, n.link_buf = n.link_buf.split(b"\x00", 1)
            if not frame:
                continue
            self.frames += 1
            to = None if self.broadcast_all else destination(frame)
            for other in self.nodes:
                if to not in (None, 0xFFFF) and other.id != to:
                    continue
                if other is not n and other.sock:
                    try:
                        other.sock.sendall(frame + b"\x00")
                    except OSError:
                        pass

    def _out(self, n, sel, key):
        try:
            data = n.proc.stdout.read()
        except BlockingIOError:
            return
        if not data:
            sel.unregister(key.fileobj)
            return
        n.log.write(data)
        n.log.flush()
        n.out_buf += data
        while b"\n" in n.out_buf:
            line, n.out_buf = n.out_buf.split(b"\n", 1)
            m = EVENT.match(line.decode(errors="replace").strip("\r"))
            if m:
                fields = dict(kv.split("=", 1) for kv in m.group(2).split())
                n.events.append((time.monotonic(), m.group(1), fields))


def cobs(data):
    """COBS-encodes `data` (no delimiter)."""
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


def garbage_check(bus, nodes, check):
    """Writes broken and hostile frames onto one node's link: each must be
    dropped and counted (link_errors=, not_for_us=, dropped=), and the node
    must go on working."""
    n = nodes[-1]
    before = stats_of(bus, [n])[n.id]
    frames = [
        b"\x02\x05\x00",                      # a 1-byte envelope: no room for an address
        b"\x05\x01\x00",                      # COBS block longer than the frame
        bytes(range(1, 255)) * 3 + b"\x00",     # longer than any frame
        cobs(bytes([9, 0]) + b"for node 9") + b"\x00",        # addressed to another node
        cobs(bytes([n.id, 0]) + b"\xff\xfe not a packet") + b"\x00",  # garbage packet
        cobs(b"\xff\xff" + bytes(range(40))) + b"\x00",       # garbage broadcast
    ]
    for f in frames:
        n.sock.sendall(f)
    bus.pump(0.5)
    after = stats_of(bus, [n])[n.id]
    alive = n.proc.poll() is None and after is not None and before is not None

    def grew(key):
        return int(after[key]) - int(before[key]) if alive else None
    check("bad frames on the link are dropped and counted",
          alive and grew("link_errors") >= 3 and grew("not_for_us") >= 1
          and grew("malformed") + grew("bad_tag") >= 2,
          f"node {n.id}: link_errors +{grew('link_errors')}, not_for_us +{grew('not_for_us')}, "
          f"malformed +{grew('malformed')}, bad_tag +{grew('bad_tag')}, still running: {alive}")
    check("cluster agrees after the bad frames", wait_agreement(bus, nodes, 10) is not None)


def qemu_cpu_ticks(node):
    """User+system clock ticks of the node's QEMU (a child of run-node.sh's
    `timeout`, or run-node.sh itself after exec)."""
    total = 0
    pids = [node.proc.pid]
    seen = set()
    while pids:
        pid = pids.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                pids += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


def views(nodes):
    """Each live node's latest opinion of the master: (node, token) or None."""
    out = {}
    for n in nodes:
        if not n.proc or n.proc.poll() is not None:
            continue
        view = None
        for _, name, f in n.events:
            if name == "became_master":
                view = (n.id, int(f["token"]))
            elif name == "master":
                view = (int(f["node"]), int(f["token"]))
            elif name in ("term_ended", "master_lost", "start"):
                view = None
        out[n.id] = view
    return out


def wait_agreement(bus, nodes, seconds, min_token=-1):
    """Waits until every live node names the same master; returns (master,
    highest fencing token seen). The token is fixed for a term (in both
    renewal modes) and rises with each change of master; nodes may briefly
    differ while one learns of a newer term."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        bus.pump(0.2)
        v = list(views(nodes).values())
        if v and None not in v and len({m for m, _ in v}) == 1:
            token = max(tok for _, tok in v)
            if token > min_token:
                return v[0][0], token
    return None


def stats_of(bus, nodes):
    """Asks every live node for an `EVENT stats` line; returns {id: fields}."""
    asked = {n.id: sum(1 for _, name, _ in n.events if name == "stats") for n in nodes}
    for n in nodes:
        n.command("stats")
    end = time.monotonic() + 5
    while time.monotonic() < end:
        bus.pump(0.2)
        if all(sum(1 for _, name, _ in n.events if name == "stats") > asked[n.id]
               for n in nodes):
            break
    return {n.id: n.last("stats") for n in nodes}


def report_wear(nodes, before, after, seconds, changes):
    """Prints flash writes and erases per completed renewal round over the
    soak, and the projected life of a 10,000-cycle region at that rate."""
    def delta(n, key):
        a, b = after.get(n.id), before.get(n.id)
        if not a or not b or key not in a or key not in b:
            return None
        return int(a[key]) - int(b[key])

    rounds = sum(delta(n, "renewals_completed") or 0 for n in nodes)
    writes = sum(delta(n, "flash_writes") or 0 for n in nodes)
    erases = sum(delta(n, "flash_erases") or 0 for n in nodes)
    persists = sum(delta(n, "persists") or 0 for n in nodes)
    for n in nodes:
        print(f"node {n.id}: flash_writes +{delta(n, 'flash_writes')} "
              f"flash_erases +{delta(n, 'flash_erases')} records +{delta(n, 'persists')} "
              f"renewals_completed +{delta(n, 'renewals_completed')}")
    per_round = writes / rounds if rounds else float("nan")
    print(f"wear over {seconds:.0f}s: {rounds} renewal rounds completed, {changes} hand-overs, "
          f"{persists} records stored, {writes} flash writes, {erases} page erases "
          f"(cluster); flash writes per completed renewal round: {per_round:.3f}")
    # Each node's store is its own region: its page erases bound its life.
    worst = max((delta(n, "flash_erases") or 0) for n in nodes)
    pages = 4
    if worst > 0:
        per_page_s = seconds * pages / worst
        life_s = per_page_s * 10_000
        print(f"busiest node erased {worst} pages in {seconds:.0f}s: each of its {pages} pages "
              f"every {per_page_s:.0f}s; a 10,000-cycle region lasts about "
              f"{life_s / 86400:.0f} days ({life_s / 86400 / 365:.1f} years)")
    else:
        print("no page erased during the soak: projected flash life not bounded by renewals")


WEAR_KEYS = ("flash_writes", "flash_bytes", "flash_erases", "persists", "renewals_completed")
PAGES = 4  # pages of each node's record store (src/flash.rs, PAGE_COUNT)
PAGE_SIZE = 4096


def wear_of(fields):
    """The wear counters of one `EVENT stats` line (counted since boot)."""
    return {k: int(fields[k]) for k in WEAR_KEYS} if fields else None


def wear_run(bus, nodes, seconds, every, check):
    """Kills the master every `every` seconds for `seconds`, restarting it
    from its flash file once the others agree on a new master, and reports
    the flash writes and page erases of every node over the run. A node's
    counters start at zero on each boot, so a node's total is the sum over
    its incarnations: each is read by a `stats` command just before the
    kill (anything stored in the few ms between that line and the kill is
    missed) and at the end."""
    view = wait_agreement(bus, nodes, 20)
    start = stats_of(bus, nodes)
    if view is None or any(v is None for v in start.values()):
        check("wear: settled cluster at the start", False, f"view={view}")
        return
    base = {n.id: wear_of(start[n.id]) for n in nodes}
    total = {n.id: dict.fromkeys(WEAR_KEYS, 0) for n in nodes}
    restarts = dict.fromkeys((n.id for n in nodes), 0)

    def bank(n, fields):
        now = wear_of(fields)
        if now is None:
            return False
        for k in WEAR_KEYS:
            total[n.id][k] += now[k] - base[n.id][k]
        base[n.id] = dict.fromkeys(WEAR_KEYS, 0)
        return True

    t0 = time.monotonic()
    end = t0 + seconds
    failovers, gaps, lost = 0, [], 0
    pending, bad_starts = [], []
    next_kill = t0 + every
    while True:
        bus.pump(max(0.0, min(next_kill, end) - time.monotonic()))
        if time.monotonic() >= end:
            break
        next_kill += every
        view = wait_agreement(bus, nodes, 20)
        if view is None:
            check("wear: agreement before a failover", False, f"views={views(nodes)}")
            return
        master = next(n for n in nodes if n.id == view[0])
        if not bank(master, stats_of(bus, [master])[master.id]):
            lost += 1
        master.kill()
        killed = time.monotonic()
        # As in the failover check: the dead master may be chosen once more.
        got, token = None, view[1]
        while time.monotonic() < killed + 20:
            got = wait_agreement(bus, nodes, killed + 20 - time.monotonic(), min_token=token)
            if got is None or got[0] != master.id:
                break
            token = got[1]
        if got is None:
            check("wear: failover", False, f"no new master after killing {master.id}")
            return
        failovers += 1
        gaps.append(time.monotonic() - killed)
        inc = int(master.last("start")["incarnation"])
        master.events.clear()
        master.start()
        restarts[master.id] += 1
        pending.append((master, inc))
        # The restarted node must come back from its newest record: one
        # incarnation higher (checked once its start line is in).
        for n, before in list(pending):
            got = n.last("start")
            if got is not None:
                pending.remove((n, before))
                if int(got["incarnation"]) != before + 1:
                    bad_starts.append((n.id, before, got["incarnation"]))
    final = stats_of(bus, nodes)
    for n, before in pending:
        got = n.last("start")
        if got is None or int(got["incarnation"]) != before + 1:
            bad_starts.append((n.id, before, got and got["incarnation"]))
    for n in nodes:
        if not bank(n, final[n.id]):
            lost += 1
    took = time.monotonic() - t0
    for n in nodes:
        t = total[n.id]
        print(f"node {n.id}: flash_writes {t['flash_writes']} flash_bytes {t['flash_bytes']} "
              f"flash_erases {t['flash_erases']} "
              f"records {t['persists']} renewals_completed {t['renewals_completed']} "
              f"restarts {restarts[n.id]}")
    writes = sum(t["flash_writes"] for t in total.values())
    erases = sum(t["flash_erases"] for t in total.values())
    records = sum(t["persists"] for t in total.values())
    gaps.sort()
    print(f"wear over {took:.0f}s with a failover every {every:.0f}s: {failovers} failovers "
          f"(kill to agreed new master: median {gaps[len(gaps) // 2] if gaps else 0:.2f}s, "
          f"max {gaps[-1] if gaps else 0:.2f}s), {records} records stored, {writes} flash "
          f"writes, {erases} page erases (cluster)")
    # Each node's store is its own region. The store is a log: every page of
    # bytes appended costs one page erase, so the bytes programmed give the
    # erase rate even over a run too short to erase a page.
    worst = max(total.values(), key=lambda t: t["flash_bytes"])
    rate = worst["flash_bytes"] / took
    print(f"busiest node: {worst['flash_bytes']} bytes programmed ({worst['flash_writes']} writes, "
          f"{worst['persists']} records) and {worst['flash_erases']} page erases in {took:.0f}s")
    if rate > 0:
        per_page_s = PAGE_SIZE / rate
        life_s = per_page_s * PAGES * 10_000
        print(f"at {rate:.2f} B/s a {PAGE_SIZE} B page fills every {per_page_s:.0f}s, each of the "
              f"{PAGES} pages is erased every {per_page_s * PAGES:.0f}s: a 10,000-cycle region "
              f"lasts about {life_s / 86400:.0f} days ({life_s / 86400 / 365:.1f} years)")
    wanted = int(seconds // every)
    check("wear: every failover followed", failovers >= max(1, wanted - 1) and lost == 0,
          f"{failovers} failovers (about {wanted} asked), {lost} stats lines missing")
    check("wear: every restart came back from its newest record", not bad_starts,
          f"incarnation not one higher: {bad_starts}" if bad_starts else
          f"{sum(restarts.values())} restarts, incarnation one higher each time")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=7200)
    ap.add_argument("--key", default="")
    ap.add_argument("--workdir", default="")
    ap.add_argument("--bus", action="store_true",
                    help="copy every frame to every node instead of routing by address")
    ap.add_argument("--extra", default="",
                    help="more command-line settings for every node, e.g. 'round_ms=150'")
    ap.add_argument("--soak", type=float, default=0,
                    help="after the checks, run this many seconds more and report "
                         "each QEMU's host CPU use, flash writes and erases per "
                         "completed renewal round, and that the master stayed put")
    ap.add_argument("--handover-every", type=float, default=0,
                    help="during the soak, hand the master role to the next node "
                         "this often (changes of master; the soak then checks "
                         "that each was followed, not that the master stayed put)")
    ap.add_argument("--wear", type=float, default=0,
                    help="after the checks (and soak), run this many seconds more, "
                         "killing the master every --failover-every seconds and "
                         "restarting it from its flash; report flash writes and "
                         "erases and the projected life of the flash")
    ap.add_argument("--failover-every", type=float, default=30,
                    help="seconds between master kills in the --wear run")
    args = ap.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="tenure-qemu-")
    members = ",".join(str(i) for i in range(1, args.nodes + 1))
    # Each QEMU is bounded in time (run-node.sh's QEMU_TIMEOUT); room for the
    # checks, the soak and the wear run.
    timeout = int(300 + args.soak + args.wear)
    nodes = [Node(i, members, args.base_port + i, workdir, args.key, args.extra, timeout)
             for i in range(1, args.nodes + 1)]
    bus = Bus(nodes, broadcast_all=args.bus)
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name} {detail}")
        else:
            failed += 1
            print(f"FAIL {name} {detail}")
        return ok

    try:
        code, said = no_record_halts(workdir, args.base_port + args.nodes + 1)
        check("no record without first_boot: halts", code == 8 and said,
              f"exit={code} message={'yes' if said else 'no'}")
        for n in nodes:
            n.start()
        t0 = time.monotonic()
        first = wait_agreement(bus, nodes, 20)
        check("election", first is not None,
              f"master={first} after {time.monotonic() - t0:.2f}s" if first else "")
        if first:
            bus.pump(2.0)  # a few renewals
            again = wait_agreement(bus, nodes, 5)
            check("stable", again is not None and again[0] == first[0], f"view={again}")

            old = next(n for n in nodes if n.id == first[0])
            heir = next(n for n in nodes if n.id != first[0])
            old.command(f"handover {heir.id}")
            t1 = time.monotonic()
            handed = wait_agreement(bus, nodes, 10, min_token=again[1] if again else 0)
            ack = old.last("command")
            ended = old.last("term_ended")
            check("handover", handed is not None and handed[0] == heir.id
                  and ack == {"name": "handover", "result": "ok"}
                  and ended is not None and ended["reason"] == "released",
                  f"to {heir.id}: view={handed} after {time.monotonic() - t1:.2f}s, "
                  f"ack={ack}, term_ended={ended}")
            if handed:
                first = handed
            old.command("release")
            bus.pump(1.0)
            check("release refused on a non-master",
                  old.last("command") == {"name": "release", "result": "refused",
                                          "reason": "not_master"},
                  f"{old.last('command')}")

            master = next(n for n in nodes if n.id == first[0])
            inc_before = int(master.last("start")["incarnation"])
            master.kill()
            t1 = time.monotonic()
            # The dead master can be chosen once more (a renewal it got accepted
            # by a minority is completed by the next proposer: Paxos keeps an
            # accepted value); that lease runs out and a live node follows.
            second = None
            end = time.monotonic() + 20
            while time.monotonic() < end:
                second = wait_agreement(bus, nodes, end - time.monotonic(), min_token=first[1])
                if second is None or second[0] != master.id:
                    break
                first = second
            check("failover", second is not None and second[0] != master.id,
                  f"new master={second} after {time.monotonic() - t1:.2f}s" if second else "")

            master.events.clear()
            master.start()
            rejoined = wait_agreement(bus, nodes, 20)
            start = master.last("start")
            check("restart keeps record",
                  start is not None and int(start["incarnation"]) == inc_before + 1,
                  f"incarnation {inc_before} -> {start and start['incarnation']}")
            check("restarted node agrees on the master", rejoined is not None,
                  f"view={rejoined}, restarted node saw {master.last('master') or master.last('became_master')}")
            if rejoined:
                rejoin_check(bus, nodes, rejoined, workdir, check)
            garbage_check(bus, nodes, check)
        if args.soak and failed == 0:
            view_before = wait_agreement(bus, nodes, 5)
            before = {n.id: qemu_cpu_ticks(n) for n in nodes}
            wear_before = stats_of(bus, nodes)
            seen = {n.id: len(n.events) for n in nodes}
            handovers = 0
            if args.handover_every > 0:
                end = time.monotonic() + args.soak
                view = view_before
                while time.monotonic() < end:
                    bus.pump(min(args.handover_every, max(0.0, end - time.monotonic())))
                    if time.monotonic() >= end or view is None:
                        break
                    master = next(n for n in nodes if n.id == view[0])
                    heir = nodes[(nodes.index(master) + 1) % len(nodes)]
                    master.command(f"handover {heir.id}")
                    got = wait_agreement(bus, nodes, 10, min_token=view[1])
                    if got is not None and got[0] == heir.id:
                        handovers += 1
                    view = got
            else:
                bus.pump(args.soak)
            hz = os.sysconf("SC_CLK_TCK")
            for n in nodes:
                used = (qemu_cpu_ticks(n) - before[n.id]) / hz
                print(f"node {n.id}: {100 * used / args.soak:.1f}% of a host core over {args.soak:.0f}s")
            wear_after = stats_of(bus, nodes)
            report_wear(nodes, wear_before, wear_after, args.soak, handovers)
            view_after = wait_agreement(bus, nodes, 5)
            changes = [(n.id, name) for n in nodes for _, name, _ in n.events[seen[n.id]:]
                       if name in ("became_master", "term_ended", "master", "master_lost")]
            if args.handover_every > 0:
                wanted = int(args.soak // args.handover_every)
                check("soak: every hand-over followed",
                      view_after is not None and handovers >= max(1, wanted - 1),
                      f"{handovers} hand-overs (about {wanted} asked), {view_before} -> {view_after}")
            else:
                check("soak: same master throughout",
                      view_before is not None and view_after is not None
                      and view_before[0] == view_after[0] and not changes,
                      f"{view_before} -> {view_after}, changes {changes}")
        if args.wear and failed == 0:
            wear_run(bus, nodes, args.wear, args.failover_every, check)
    finally:
        for n in nodes:
            n.kill()
    print(f"frames forwarded: {bus.frames}; logs in {workdir}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


main()
