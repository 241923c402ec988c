#!/usr/bin/env python3
"""Helper for scripts/bench (standard library only).

Subcommands:
  freeports N [--start P] [--end P]     N free loopback TCP ports (never 6379)
  load --port P --keys N [--value-size B] [--ex S] [--prefix key:] [--batch C]
                                        pipelined SET loader writing RESP directly;
                                        keys are PREFIX + %012d of 0..N-1 (the names
                                        redis-benchmark -r uses); prints one line
                                        "sent=N ok=N errors=E seconds=S"; exit 1 on errors
  probe --port P --out FILE             unpipelined SET probe: one SET at a time until
                                        SIGTERM/SIGINT, then writes its latency stats
                                        (count, max, percentiles in microseconds) to FILE
  info|argv|prepare|reset NAME        command tests (table TESTS below): kind, argv for
                                        redis-benchmark, preload+setup+probe, per-run reset
  block NAME --port P --n N [--pipeline K] [--clients C]
                                        pipelined raw-socket client for block tests (MULTI)
  subscribe --port P --channel C --conns N --ready FILE
                                        N subscribers draining C until SIGTERM
  cfill --port P --kind K --n N         N elements into a collection (K: stream zset set hash list)
  about NAMES...                        one description line per command test
  rbcsv FILE                            redis-benchmark --csv output -> "rps p50_ms p99_ms"
  report TSV --a NAME --b NAME [...]    tables and the SUMMARY line from bench's results
"""
import argparse
import hashlib
import json
import math
import random
import selectors
import signal
import socket
import statistics
import sys
import threading
import time


# --------------------------------------------------------------------------- ports
def cmd_freeports(a):
    found = []
    for p in range(a.start, a.end + 1):
        if p == 6379:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        # also refuse a port someone is listening on via another address
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(0.2)
        try:
            busy = c.connect_ex(("127.0.0.1", p)) == 0
        finally:
            c.close()
        if not busy:
            found.append(p)
            if len(found) == a.n:
                break
    if len(found) < a.n:
        sys.exit(f"bench-helper: only {len(found)} free ports in {a.start}-{a.end}")
    print(" ".join(map(str, found)))


# --------------------------------------------------------------------------- loader
def resp_bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def cmd_load(a):
    prefix = a.prefix.encode()
    value = b"x" * a.value_size
    nargs = 5 if a.ex else 3
    keylen = len(prefix) + 12
    # "%012d" keeps every key the same length, so one template serves all keys
    tmpl = (b"*%d\r\n" % nargs) + resp_bulk(b"SET") + (b"$%d\r\n" % keylen) + prefix + b"%012d\r\n" + resp_bulk(value)
    if a.ex:
        tmpl += resp_bulk(b"EX") + resp_bulk(str(a.ex).encode())
    tmpl = tmpl.replace(b"%", b"%%").replace(b"%%012d", b"%012d")

    sock = socket.create_connection(("127.0.0.1", a.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state = {"lines": 0, "err": None, "done": threading.Event()}

    def reader():
        # every reply to SET is one line: +OK\r\n, or -ERR ...\r\n
        tail = b""
        try:
            while state["lines"] < a.keys:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    state["err"] = state["err"] or "connection closed by server"
                    break
                state["lines"] += chunk.count(b"\n")
                if state["err"] is None and b"-" in chunk:   # "+OK" has no '-': an error reply
                    buf = tail + chunk
                    i = buf.index(b"-")
                    state["err"] = buf[i:buf.find(b"\r\n", i)].decode(errors="replace")
                tail = chunk[-200:]
        except OSError as e:
            state["err"] = state["err"] or str(e)
        state["done"].set()

    t = threading.Thread(target=reader, daemon=True)
    t0 = time.perf_counter()
    t.start()
    try:
        for lo in range(0, a.keys, a.batch):
            hi = min(a.keys, lo + a.batch)
            sock.sendall(b"".join([tmpl % i for i in range(lo, hi)]))
            if state["done"].is_set():
                break
    except OSError as e:
        state["err"] = state["err"] or str(e)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    state["done"].wait(timeout=600)
    dt = time.perf_counter() - t0
    sock.close()
    errors = 1 if state["err"] else 0
    print(f"sent={a.keys} ok={state['lines'] if not errors else 'n/a'} errors={errors} seconds={dt:.2f}"
          + (f" first_error={state['err']!r}" if errors else ""))
    sys.exit(1 if errors else 0)


# --------------------------------------------------------------------------- command tests
# Every test that is not a redis-benchmark -t test: a command line for redis-benchmark
# (with __rand_int__ substitution under -r) or a block of commands for the pipelined
# `block` client, plus what the server needs first.  Fields:
#   cmd      argv for redis-benchmark                 block  commands sent as one unit
#   r        -r (default: bench's --keyspace)         cap    at most this many requests per run
#   pre      f(keyspace) -> iterable of argv tuples, sent pipelined once per server
#   setup    commands run once after pre              reset  commands run before every run
#   subs     subscribers on `channel` during the runs (the `subscribe` subcommand)
#   optional an error reply in setup or the probe skips the test for that server (exit 3)
#   about    one line for the report
SCRIPT = "return redis.call('GET', KEYS[1])"
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()
XRG_ENTRIES = 300000   # stream read by xreadgroup: enough for one capped run


def _zset(n):
    return ((b"ZADD", b"bench:zset", b"%d" % i, b"m:%012d" % i) for i in range(n))


def _geo(n):
    rnd = random.Random(4)   # the same points on both servers
    return ((b"GEOADD", b"bench:geo", b"%.6f" % (13 + 4 * rnd.random()), b"%.6f" % (35 + 4 * rnd.random()),
             b"m:%012d" % i) for i in range(n))


def _hll(n):
    return ((b"PFADD", b"bench:hll:%012d" % i) + tuple(b"e%d:%d" % (j, i) for j in range(50)) for i in range(n))


def _stream(key, n):
    yield (b"DEL", key)   # prepared again by another test that shares the key
    yield from ((b"XADD", key, b"%d-1" % (i + 1), b"field", b"%012d" % i) for i in range(n))


TESTS = {
    "zrange": dict(cmd=["ZRANGE", "bench:zset", "0", "9"], r=100000, pre=lambda k: _zset(100000),
                   about="ZRANGE 0 9 of a 100,000-member zset"),
    "zrange_ws": dict(cmd=["ZRANGE", "bench:zset", "0", "9", "WITHSCORES"], r=100000, pre=lambda k: _zset(100000),
                      about="ZRANGE 0 9 WITHSCORES of the same zset"),
    "zrank": dict(cmd=["ZRANK", "bench:zset", "m:__rand_int__"], r=100000, pre=lambda k: _zset(100000),
                  about="ZRANK of a random member of the same zset"),
    # redis-benchmark's __rand_int__ has leading zeros, which bit offsets refuse: block client
    "setbit": dict(block=[["SETBIT", "bench:bits", "__rand_dec__", "1"]], r=1000000,
                   about="SETBIT of a random bit of a 1,000,000-bit bitmap (block client)"),
    "bitcount": dict(cmd=["BITCOUNT", "bench:bitmap"],
                     pre=lambda k: [(b"SET", b"bench:bitmap", random.Random(5).randbytes(12500))],
                     about="BITCOUNT of a 12,500-byte bitmap"),
    "pfadd": dict(cmd=["PFADD", "bench:pfadd", "m:__rand_int__"], about="PFADD of a random element to one HLL"),
    "pfcount": dict(cmd=["PFCOUNT", "bench:hll:__rand_int__"], r=1000, pre=lambda k: _hll(1000),
                    about="PFCOUNT of one of 1,000 HLLs of 50 elements"),
    "geoadd": dict(cmd=["GEOADD", "bench:geoadd", "13.__rand_int__", "38.__rand_int__", "m:__rand_int__"],
                   about="GEOADD of a random member"),
    "geosearch": dict(cmd=["GEOSEARCH", "bench:geo", "FROMLONLAT", "15", "37", "BYRADIUS", "5", "km"],
                      pre=lambda k: _geo(100000),
                      about="GEOSEARCH FROMLONLAT BYRADIUS 5 km in 100,000 points (~50 hits)"),
    "xadd": dict(cmd=["XADD", "bench:xadd", "*", "field", "__rand_int__"], reset=[["DEL", "bench:xadd"]],
                 about="XADD * of a one-field entry (stream deleted before each run)"),
    "xrange": dict(cmd=["XRANGE", "bench:stream", "__rand_int__", "+", "COUNT", "10"], r=100000,
                   pre=lambda k: _stream(b"bench:stream", 100000),
                   about="XRANGE <random id> + COUNT 10 of a 100,000-entry stream"),
    "xreadgroup": dict(cmd=["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "bench:xrg", ">"],
                       pre=lambda k: _stream(b"bench:xrg", XRG_ENTRIES), cap=XRG_ENTRIES,
                       reset=[["XGROUP", "DESTROY", "bench:xrg", "g"], ["XGROUP", "CREATE", "bench:xrg", "g", "0"]],
                       about=f"XREADGROUP COUNT 1 >, {XRG_ENTRIES:,}-entry stream, new group each run (runs capped)"),
    "evalsha": dict(cmd=["EVALSHA", SCRIPT_SHA, "1", "key:__rand_int__"], setup=[["SCRIPT", "LOAD", SCRIPT]],
                    optional=True, about=f"EVALSHA of \"{SCRIPT}\" on the preloaded keys"),
    "publish1": dict(cmd=["PUBLISH", "bench:ch1", "x" * 32], subs=1, channel="bench:ch1",
                     about="PUBLISH of 32 bytes to 1 subscriber"),
    "publish100": dict(cmd=["PUBLISH", "bench:ch100", "x" * 32], subs=100, channel="bench:ch100", cap=20000,
                       about="PUBLISH of 32 bytes to 100 subscribers (runs capped at 20,000 publishes)"),
    "multi": dict(block=[["MULTI"], ["INCR", "bench:a"], ["INCR", "bench:b"], ["INCR", "bench:c"], ["EXEC"]],
                  about="MULTI; INCR a; INCR b; INCR c; EXEC (pipelined block client; rate = transactions)"),
}


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for x in args:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)


def parse_reply(buf, i):
    """One RESP reply starting at buf[i]: (end index, error text or None), or None if incomplete.
    An error anywhere inside an aggregate is reported; a null EXEC (*-1) counts as an error."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        return None
    t, line, k = buf[i:i + 1], buf[i + 1:j], j + 2
    if t in (b"+", b":", b",", b"_", b"#", b"(") or t == b"":
        return k, None
    if t == b"-" or t == b"!":
        return k, line.decode(errors="replace")
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return k, None
        return (k + n + 2, None) if len(buf) >= k + n + 2 else None
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(line)
        if n < 0:
            return k, "null array (aborted transaction?)" if t == b"*" else None
        n = n * 2 if t in (b"%", b"|") else n
        err = None
        for _ in range(n):
            r = parse_reply(buf, k)
            if r is None:
                return None
            k, e = r
            err = err or e
        return k, err
    return k, f"unexpected reply type {t!r}"


class Conn:
    """A blocking RESP connection for setup work: call() one command, pipe() many."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf, self.pos = b"", 0

    def read(self):
        while True:
            r = parse_reply(self.buf, self.pos)
            if r is not None:
                start, (self.pos, err) = self.pos, r
                return self.buf[start:self.pos], err
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise OSError("connection closed by server")
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0

    def call(self, args):
        self.s.sendall(encode(args))
        return self.read()

    def pipe(self, cmds, batch=5000):
        """Send every command pipelined (batch at a time in flight); returns (count, first error)."""
        n, first, pending = 0, None, 0
        it = iter(cmds)
        while True:
            chunk = [encode(c) for _, c in zip(range(batch), it)]
            if chunk:
                self.s.sendall(b"".join(chunk))
            for _ in range(pending):
                _, e = self.read()
                first = first or e
            n += pending
            pending = len(chunk)
            if not chunk:
                return n, first


def test_spec(name):
    if name not in TESTS:
        sys.exit(f"bench-helper: unknown command test {name!r}")
    return TESTS[name]


def fill(t, r, v=None):
    """The test's command with every __rand_int__ (12 digits, as redis-benchmark writes it)
    and __rand_dec__ (plain decimal; block client only) replaced by v, default r - 1."""
    v = r - 1 if v is None else v
    return [x.replace("__rand_int__", "%012d" % v).replace("__rand_dec__", "%d" % v) for x in t]


def cmd_info(a):
    # one line for bench: kind r cap subs channel has_reset
    if a.name not in TESTS:
        print("none")
        return
    t = TESTS[a.name]
    print("block" if "block" in t else "rb", t.get("r", a.keyspace), t.get("cap", 0), t.get("subs", 0),
          t.get("channel", "-"), 1 if t.get("reset") else 0)


def cmd_argv(a):
    sys.stdout.write("".join(x + "\0" for x in test_spec(a.name)["cmd"]))


def cmd_prepare(a):
    """Preload, setup, then one probe of the command (or block); exit 3 = skip, 1 = error."""
    t = test_spec(a.name)
    c = Conn(a.port)
    t0 = time.perf_counter()
    n = 0
    if "pre" in t:
        n, err = c.pipe(t["pre"](a.keyspace))
        if err:
            sys.exit(f"preload of {a.name}: {err}")
    for cmd in t.get("setup", []) + t.get("reset", []):
        reply, err = c.call(cmd)
        if err:
            if t.get("optional"):
                print(f"{' '.join(cmd[:2])}: {err.strip()}")
                sys.exit(3)
            sys.exit(f"setup of {a.name}: {' '.join(cmd)[:60]}: {err}")
    r = t.get("r", a.keyspace)
    probe = t["block"] if "block" in t else [t["cmd"]]
    for cmd in probe:
        reply, err = c.call(fill(cmd, r))
        if err:
            if t.get("optional"):
                print(f"{cmd[0]}: {err.strip()}")
                sys.exit(3)
            sys.exit(f"{a.name}: {' '.join(fill(cmd, r))[:80]} answered an error: {err}")
        if t.get("subs") and reply != b":%d\r\n" % t["subs"]:
            sys.exit(f"{a.name}: PUBLISH reached {reply!r}, expected {t['subs']} subscribers")
    print(f"preloaded={n} seconds={time.perf_counter() - t0:.2f}")


def cmd_reset(a):
    t = test_spec(a.name)
    c = Conn(a.port)
    for cmd in t.get("reset", []):
        _, err = c.call(cmd)
        if err and cmd[:2] != ["XGROUP", "DESTROY"]:
            sys.exit(f"reset of {a.name}: {' '.join(cmd)}: {err}")


def cmd_block(a):
    """Pipelined raw-socket client: --clients connections each keep --pipeline blocks in
    flight until --n blocks are done; prints redis-benchmark-style CSV (rate = blocks/s,
    latency = round trip of one pipeline of blocks).  Any error reply fails the run."""
    t = test_spec(a.name)
    r = t.get("r", a.keyspace)
    rnd = random.Random(7)
    blk = t["block"]
    per = len(blk)
    needs_rand = any("__rand_" in x for c in blk for x in c)

    def payload():
        if not needs_rand:
            return fixed
        return b"".join(encode(fill(c, r, rnd.randrange(r))) for _ in range(a.pipeline) for c in blk)

    fixed = b"".join(encode(c) for c in blk) * a.pipeline
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(a.clients):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        st = {"s": s, "buf": b"", "pos": 0, "want": 0, "t0": 0}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)
    sent = done = 0
    lat = []
    pc = time.perf_counter

    def launch(st):
        nonlocal sent
        k = min(a.pipeline, a.n - sent)
        if k <= 0:
            return
        data = payload() if k == a.pipeline else b"".join(encode(c) for c in blk) * k
        st["s"].setblocking(True)
        st["s"].sendall(data)
        st["s"].setblocking(False)
        st["want"], st["k"], st["t0"] = k * per, k, pc()
        sent += k

    t_start = pc()
    for st in conns:
        launch(st)
    while done < a.n:
        for key, _ in sel.select(timeout=30):
            st = key.data
            chunk = st["s"].recv(1 << 20)
            if not chunk:
                sys.exit(f"bench-helper block {a.name}: connection closed by server")
            st["buf"] = st["buf"][st["pos"]:] + chunk
            st["pos"] = 0
            while st["want"]:
                rr = parse_reply(st["buf"], st["pos"])
                if rr is None:
                    break
                st["pos"], err = rr
                if err:
                    print(f"Error from server: {err}", file=sys.stderr)
                    sys.exit(1)
                st["want"] -= 1
                if st["want"] == 0:
                    lat.append((pc() - st["t0"]) * 1000)
                    done += st["k"]
                    launch(st)
    dt = pc() - t_start
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(math.ceil(p / 100.0 * len(lat))) - 1)]
    print('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
          '"p99_latency_ms","max_latency_ms"')
    print(f'"{a.name}","{a.n / dt:.2f}","{statistics.mean(lat):.3f}","{lat[0]:.3f}","{pct(50):.3f}",'
          f'"{pct(95):.3f}","{pct(99):.3f}","{lat[-1]:.3f}"')


def cmd_about(a):
    for n in a.names:
        if n in TESTS:
            t = TESTS[n]
            line = " ".join(t["cmd"]) if "cmd" in t else "; ".join(" ".join(c) for c in t["block"])
            print(f"   {n:11} {t['about']}: {line[:70]}")


def cmd_subscribe(a):
    """--conns connections SUBSCRIBEd to --channel; touches --ready once all are confirmed,
    then drains whatever arrives until SIGTERM (so the server never blocks on them)."""
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))
    sel = selectors.DefaultSelector()
    for _ in range(a.conns):
        c = Conn(a.port)
        _, err = c.call(["SUBSCRIBE", a.channel])
        if err:
            sys.exit(f"SUBSCRIBE: {err}")
        c.s.setblocking(False)
        sel.register(c.s, selectors.EVENT_READ)
    open(a.ready, "w").write("ready\n")
    got = 0
    while not stop["flag"]:
        for key, _ in sel.select(timeout=0.5):
            try:
                got += len(key.fileobj.recv(1 << 20))
            except BlockingIOError:
                pass
    print(f"received_bytes={got}")


# --------------------------------------------------------------------------- collection memory
# Element-memory rows (issues 3 and 4): what one fill sends, how the server's
# element count is asked for, and the row's description in the report.
# Hashes: 10 small fields per key (listpack encoding on both servers).
FILLS = {
    "stream": (lambda i: (b"XADD", b"mem:stream", b"*", b"field", b"%08d" % i),
               lambda n: [(b"XLEN", b"mem:stream")], "one stream, XADD mem:stream * field <8 digits>"),
    "zset": (lambda i: (b"ZADD", b"mem:zset", b"%d" % i, b"m:%012d" % i),
             lambda n: [(b"ZCARD", b"mem:zset")], "one sorted set, members 'm:' + 12 digits, integer scores"),
    "set": (lambda i: (b"SADD", b"mem:set", b"m:%012d" % i),
            lambda n: [(b"SCARD", b"mem:set")], "one set, members 'm:' + 12 digits"),
    "hash": (lambda i: (b"HSET", b"mem:hash:%08d" % (i // 10), b"f%d" % (i % 10), b"v:%08d" % i),
             lambda n: [(b"DBSIZE",), (b"HLEN", b"mem:hash:%08d" % 0)],
             "N/10 hashes of 10 fields ('f' + digit = 'v:' + 8 digits); elements = DBSIZE x HLEN"),
    "list": (lambda i: (b"RPUSH", b"mem:list", b"%010d" % i),
             lambda n: [(b"LLEN", b"mem:list")], "one list of 10-byte elements"),
}


def cmd_cfill(a):
    """--n elements into one collection of --kind, pipelined; prints the element count."""
    one, count, _ = FILLS[a.kind]
    c = Conn(a.port)
    t0 = time.perf_counter()
    n, err = c.pipe(one(i) for i in range(a.n))
    secs = time.perf_counter() - t0
    elements = 1
    for q in count(a.n):
        raw, e = c.call(q)
        if e or not raw.startswith(b":"):
            sys.exit(f"bench-helper cfill: {q[0].decode()} answered {raw!r}")
        elements *= int(raw[1:])
    print(f"elements={elements} sent={n} errors={1 if err else 0} seconds={secs:.2f}"
          + (f" first_error={err!r}" if err else ""))
    sys.exit(1 if err else 0)


# --------------------------------------------------------------------------- probe
def cmd_probe(a):
    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sock = socket.create_connection(("127.0.0.1", a.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []            # microseconds
    worst = (0.0, 0.0)  # (latency us, seconds since start)
    t_start = time.perf_counter()
    i = 0
    pc = time.perf_counter_ns
    err = None
    while not stop["flag"]:
        k = b"probe:%d" % (i % 100000)   # spread over the keyspace: every shard is probed
        msg = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n" % (len(k), k)
        t0 = pc()
        sock.sendall(msg)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = sock.recv(256)
            if not chunk:
                err = "connection closed"
                break
            buf += chunk
        us = (pc() - t0) / 1000.0
        if err:
            break
        if not buf.startswith(b"+"):
            err = buf.decode(errors="replace").strip()
            break
        lat.append(us)
        if us > worst[0]:
            worst = (us, time.perf_counter() - t_start)
        i += 1
        if a.interval:
            time.sleep(a.interval)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(math.ceil(p / 100.0 * len(lat))) - 1)] if lat else float("nan")

    res = {"count": len(lat), "max_us": worst[0], "max_at_s": worst[1],
           "p50_us": pct(50), "p99_us": pct(99), "p999_us": pct(99.9),
           "over_1ms": sum(1 for x in lat if x > 1000), "over_10ms": sum(1 for x in lat if x > 10000),
           "seconds": time.perf_counter() - t_start, "error": err}
    with open(a.out, "w") as f:
        json.dump(res, f)


# --------------------------------------------------------------------------- rbcsv
def cmd_rbcsv(a):
    import csv
    rows = list(csv.DictReader(open(a.file)))
    if not rows or not rows[0].get("rps"):
        sys.exit(1)
    r = rows[0]
    print(r["rps"], r.get("p50_latency_ms", "nan"), r.get("p99_latency_ms", "nan"))


# --------------------------------------------------------------------------- report
def cmd_report(a):
    # TSV rows: section test round server metric value
    D = {}
    meta = {}
    skips = {}    # test base name -> {server: reason}
    order = []    # throughput tests in the order they ran
    for line in open(a.tsv):
        f = line.rstrip("\n").split("\t")
        if len(f) != 6:
            continue
        sec, test, rnd, srv, metric, val = f
        if sec == "meta":
            meta[metric] = val
            continue
        if sec == "skip":
            skips.setdefault(test, {})[srv] = val
            continue
        if sec == "thr" and test not in order:
            order.append(test)
        try:
            v = float(val)
        except ValueError:
            v = float("nan")
        D.setdefault((sec, test, metric), {}).setdefault(srv, {})[int(rnd)] = v

    A, B = a.a, a.b
    ok = lambda x: x is not None and not math.isnan(x)

    def med(d):
        xs = [x for x in (d or {}).values() if ok(x)]
        return statistics.median(xs) if xs else float("nan")

    def ratio(x, y):
        return x / y if ok(x) and ok(y) and y > 0 else float("nan")

    def f(x, nd=0, w=0):
        s = "n/a" if not ok(x) else f"{x:,.{nd}f}"
        return s.rjust(w)

    summary = []
    an, bn = A[:11], B[:11]
    tests = order
    for base in skips:   # a test skipped on both servers still gets its rows
        for t in (base + "-p1", base + "-p16"):
            if t not in tests:
                tests.append(t)
    W = max([8] + [len(t) for t in tests])
    if tests:
        nr = max([len(D.get(("thr", t, "rps"), {}).get(s, {})) for t in tests for s in (A, B)] + [0])
        print(f"\n== Throughput: redis-benchmark, {a.clients} clients, -r {a.keyspace}, -d 32; "
              f"median of {nr} interleaved rounds")
        print("   ratio = median(A)/median(B); [lo..hi] = range of the per-round ratios (the noise)")
        custom = sorted({t.rsplit("-p", 1)[0] for t in tests} & set(TESTS), key=lambda x: list(TESTS).index(x))
        if custom:
            print("   command tests (rps = commands/s; for block tests = blocks/s, CPU per block):")
            for n in custom:
                t = TESTS[n]
                line = " ".join(t["cmd"]) if "cmd" in t else "; ".join(" ".join(c) for c in t["block"])
                extra = f" -r {t['r']}" if "r" in t else ""
                print(f"     {n:11} {t['about']}\n     {'':11}   {line[:90]}{extra}")
        for base, by in skips.items():
            for srv, why in by.items():
                print(f"   SKIPPED {base} on {srv}: {why}")
        print(f"{'test':{W}} {an+' rps':>15} {bn+' rps':>15} {'ratio':>6} {'[lo..hi]':>14}  "
              f"{an+' p99ms':>13} {bn+' p99ms':>13}")
        for t in tests:
            d = D.get(("thr", t, "rps"), {})
            ma, mb = med(d.get(A)), med(d.get(B))
            per = [ratio(d[A][r], d[B][r]) for r in d.get(A, {}) if r in d.get(B, {})]
            per = [x for x in per if ok(x)]
            rr = ratio(ma, mb)
            rng = f"[{min(per):.2f}..{max(per):.2f}]" if per else ""
            p99 = D.get(("thr", t, "p99_ms"), {})
            print(f"{t:{W}} {f(ma, 0, 15)} {f(mb, 0, 15)} {f(rr, 3, 6)} {rng:>14}  "
                  f"{f(med(p99.get(A)), 3, 13)} {f(med(p99.get(B)), 3, 13)}")
            summary.append((f"{t}_rps", rr))
        print(f"\n== Server CPU per request: (utime+stime after - before) / requests, all threads; "
              f"lower is better")
        print(f"{'test':{W}} {an+' us/req':>15} {bn+' us/req':>15} {'ratio':>6} {'[lo..hi]':>14}  "
              f"{an+' util':>13} {bn+' util':>13}")
        for t in tests:
            d = D.get(("thr", t, "cpu_us"), {})
            ma, mb = med(d.get(A)), med(d.get(B))
            per = [ratio(d[A][r], d[B][r]) for r in d.get(A, {}) if r in d.get(B, {})]
            per = [x for x in per if ok(x)]
            rr = ratio(ma, mb)
            rng = f"[{min(per):.2f}..{max(per):.2f}]" if per else ""
            u = D.get(("thr", t, "cpu_util"), {})
            print(f"{t:{W}} {f(ma, 3, 15)} {f(mb, 3, 15)} {f(rr, 3, 6)} {rng:>14}  "
                  f"{f(med(u.get(A)), 2, 13)} {f(med(u.get(B)), 2, 13)}")
            summary.append((f"{t}_cpu", rr))
        print("   util = server CPU seconds / wall seconds of the run (1.00 = one core busy)")
        oc = [x for t in tests for d in D.get(("thr", t, "other_cpus"), {}).values() for x in d.values() if ok(x)]
        cu = [x for t in tests for d in D.get(("thr", t, "client_util"), {}).values() for x in d.values() if ok(x)]
        if oc:
            other = statistics.mean(oc)
            meta["other_cpus"] = f"{other:.2f}"
            print(f"   redis-benchmark used {statistics.median(cu):.2f} CPUs (median); other processes used "
                  f"{other:.2f} CPUs on average, {max(oc):.2f} at most"
                  + (" -- a busy machine: rps and CPU figures are noisy" if other > 0.15 else ""))

    mem = [t for t in ("mem", "mem-ttl") + tuple("mem-" + k for k in FILLS) if ("mem", t, "bytes_per_key") in D]
    if mem:
        print("\n== Memory per key: fresh server, keys loaded by a pipelined client, "
              "(VmRSS after - VmRSS before) / DBSIZE")
        print(f"{'row':10} {'keys':>10} {an+' B/key':>15} {bn+' B/key':>15} {'ratio':>6}  "
              f"{an+' RSS MB':>13} {bn+' RSS MB':>13}")
        for t in mem:
            d = D[("mem", t, "bytes_per_key")]
            k = D.get(("mem", t, "keys"), {})
            ka, kb = med(k.get(A)), med(k.get(B))
            keys = f(ka, 0) if ka == kb else f"{f(ka, 0)}/{f(kb, 0)}"
            ma, mb = med(d.get(A)), med(d.get(B))
            rss = D.get(("mem", t, "rss_after_kb"), {})
            rr = ratio(ma, mb)
            print(f"{t:10} {keys:>10} {f(ma, 1, 15)} {f(mb, 1, 15)} {f(rr, 3, 6)}  "
                  f"{f(med(rss.get(A)) / 1024, 1, 13)} {f(med(rss.get(B)) / 1024, 1, 13)}")
            summary.append((f"{t.replace('-', '_')}_per_{'key' if t in ('mem', 'mem-ttl') else 'element'}", rr))
        if "mem" in mem and "mem-ttl" in mem:
            ea = med(D[("mem", "mem-ttl", "bytes_per_key")].get(A)) - med(D[("mem", "mem", "bytes_per_key")].get(A))
            eb = med(D[("mem", "mem-ttl", "bytes_per_key")].get(B)) - med(D[("mem", "mem", "bytes_per_key")].get(B))
            print(f"{'TTL cost':10} {'':>10} {f(ea, 1, 15)} {f(eb, 1, 15)}")
        print("   mem, mem-ttl: keys 'key:' + 12 digits (16 B), values 32 B")
        for t in mem:
            if t[4:] in FILLS:
                print(f"   {t}: 'keys' = elements; {FILLS[t[4:]][2]}")

    lat = [s for s in (A, B) if ("lat", "latency", "max_us") in D and s in D[("lat", "latency", "max_us")]]
    if lat:
        g = lambda s, m: med(D.get(("lat", "latency", m), {}).get(s))
        print(f"\n== Latency growth: {a.lat_keys:,} keys loaded by a pipelined client while an "
              f"unpipelined probe client SETs; probe latency in ms")
        print(f"{'server':11} {'probes':>8} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>8} {'>1ms':>6} "
              f"{'>10ms':>6} {'load s':>7} {'keys':>10}")
        for s in lat:
            print(f"{s[:11]:11} {f(g(s, 'count'), 0, 8)} {f(g(s, 'p50_us') / 1000, 3, 8)} "
                  f"{f(g(s, 'p99_us') / 1000, 3, 8)} {f(g(s, 'p999_us') / 1000, 3, 8)} "
                  f"{f(g(s, 'max_us') / 1000, 2, 8)} {f(g(s, 'over_1ms'), 0, 6)} {f(g(s, 'over_10ms'), 0, 6)} "
                  f"{f(g(s, 'load_s'), 1, 7)} {f(g(s, 'keys'), 0, 10)}")
        summary.append(("latgrowth_max_ms_" + A.replace("-", "_"), g(A, "max_us") / 1000))
        if B in lat:
            summary.append(("latgrowth_max_ratio", ratio(g(A, "max_us"), g(B, "max_us"))))

    print(f"\n   ratios are {A}/{B}: *_rps > 1 = {A} faster; *_cpu, *_per_key and *_per_element < 1 = {A} better")
    lo = [meta[k] for k in sorted(meta) if k.startswith("load1_round")]
    if lo:
        print(f"   load1 per round: {' '.join(lo)}")
    parts = [f"{k.replace('-', '_')}={'n/a' if not ok(v) else format(v, '.3f')}" for k, v in summary]
    print(f"SUMMARY {A}/{B} " + " ".join(parts)
          + "".join(f" {k}={meta[k]}" for k in ("threads", "pin", "other_cpus", "load1_start", "load1_end") if k in meta))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("freeports")
    p.add_argument("n", type=int)
    p.add_argument("--start", type=int, default=7300)
    p.add_argument("--end", type=int, default=7999)
    p.set_defaults(fn=cmd_freeports)
    p = sp.add_parser("load")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keys", type=int, required=True)
    p.add_argument("--value-size", type=int, default=32)
    p.add_argument("--ex", type=int, default=0)
    p.add_argument("--prefix", default="key:")
    p.add_argument("--batch", type=int, default=10000)
    p.set_defaults(fn=cmd_load)
    p = sp.add_parser("probe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=0.0)
    p.set_defaults(fn=cmd_probe)
    p = sp.add_parser("info")
    p.add_argument("name")
    p.add_argument("--keyspace", type=int, default=100000)
    p.set_defaults(fn=cmd_info)
    p = sp.add_parser("argv")
    p.add_argument("name")
    p.set_defaults(fn=cmd_argv)
    for nm, fn in (("prepare", cmd_prepare), ("reset", cmd_reset)):
        p = sp.add_parser(nm)
        p.add_argument("name")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--keyspace", type=int, default=100000)
        p.set_defaults(fn=fn)
    p = sp.add_parser("block")
    p.add_argument("name")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--keyspace", type=int, default=100000)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--pipeline", type=int, default=1)
    p.set_defaults(fn=cmd_block)
    p = sp.add_parser("subscribe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--channel", required=True)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--ready", required=True)
    p.set_defaults(fn=cmd_subscribe)
    p = sp.add_parser("cfill")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--kind", choices=sorted(FILLS), required=True)
    p.add_argument("--n", type=int, required=True)
    p.set_defaults(fn=cmd_cfill)
    p = sp.add_parser("about")
    p.add_argument("names", nargs="*")
    p.set_defaults(fn=cmd_about)
    p = sp.add_parser("rbcsv")
    p.add_argument("file")
    p.set_defaults(fn=cmd_rbcsv)
    p = sp.add_parser("report")
    p.add_argument("tsv")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--clients", default="50")
    p.add_argument("--keyspace", default="?")
    p.add_argument("--lat-keys", type=int, default=0)
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
