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
  rbcsv FILE                            redis-benchmark --csv output -> "rps p50_ms p99_ms"
  report TSV --a NAME --b NAME [...]    tables and the SUMMARY line from bench's results
"""
import argparse
import json
import math
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
    for line in open(a.tsv):
        f = line.rstrip("\n").split("\t")
        if len(f) != 6:
            continue
        sec, test, rnd, srv, metric, val = f
        if sec == "meta":
            meta[metric] = val
            continue
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
    tests = [t for t in ("set-p1", "get-p1", "set-p16", "get-p16") if ("thr", t, "rps") in D]
    if tests:
        nr = max(len(D[("thr", t, "rps")].get(A, {})) for t in tests)
        print(f"\n== Throughput: redis-benchmark, {a.clients} clients, -r {a.keyspace}, -d 32; "
              f"median of {nr} interleaved rounds")
        print("   ratio = median(A)/median(B); [lo..hi] = range of the per-round ratios (the noise)")
        print(f"{'test':8} {an+' rps':>15} {bn+' rps':>15} {'ratio':>6} {'[lo..hi]':>14}  "
              f"{an+' p99ms':>13} {bn+' p99ms':>13}")
        for t in tests:
            d = D[("thr", t, "rps")]
            ma, mb = med(d.get(A)), med(d.get(B))
            per = [ratio(d[A][r], d[B][r]) for r in d.get(A, {}) if r in d.get(B, {})]
            per = [x for x in per if ok(x)]
            rr = ratio(ma, mb)
            rng = f"[{min(per):.2f}..{max(per):.2f}]" if per else ""
            p99 = D.get(("thr", t, "p99_ms"), {})
            print(f"{t:8} {f(ma, 0, 15)} {f(mb, 0, 15)} {f(rr, 3, 6)} {rng:>14}  "
                  f"{f(med(p99.get(A)), 3, 13)} {f(med(p99.get(B)), 3, 13)}")
            summary.append((f"{t}_rps", rr))
        print(f"\n== Server CPU per request: (utime+stime after - before) / requests, all threads; "
              f"lower is better")
        print(f"{'test':8} {an+' us/req':>15} {bn+' us/req':>15} {'ratio':>6} {'[lo..hi]':>14}  "
              f"{an+' util':>13} {bn+' util':>13}")
        for t in tests:
            d = D.get(("thr", t, "cpu_us"), {})
            ma, mb = med(d.get(A)), med(d.get(B))
            per = [ratio(d[A][r], d[B][r]) for r in d.get(A, {}) if r in d.get(B, {})]
            per = [x for x in per if ok(x)]
            rr = ratio(ma, mb)
            rng = f"[{min(per):.2f}..{max(per):.2f}]" if per else ""
            u = D.get(("thr", t, "cpu_util"), {})
            print(f"{t:8} {f(ma, 3, 15)} {f(mb, 3, 15)} {f(rr, 3, 6)} {rng:>14}  "
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

    mem = [t for t in ("mem", "mem-ttl") if ("mem", t, "bytes_per_key") in D]
    if mem:
        print("\n== Memory per key: fresh server, keys loaded by a pipelined client, "
              "(VmRSS after - VmRSS before) / DBSIZE")
        print(f"{'row':8} {'keys':>10} {an+' B/key':>15} {bn+' B/key':>15} {'ratio':>6}  "
              f"{an+' RSS MB':>13} {bn+' RSS MB':>13}")
        label = {"mem": "mem", "mem-ttl": "mem-ttl"}
        for t in mem:
            d = D[("mem", t, "bytes_per_key")]
            k = D.get(("mem", t, "keys"), {})
            ka, kb = med(k.get(A)), med(k.get(B))
            keys = f(ka, 0) if ka == kb else f"{f(ka, 0)}/{f(kb, 0)}"
            ma, mb = med(d.get(A)), med(d.get(B))
            rss = D.get(("mem", t, "rss_after_kb"), {})
            rr = ratio(ma, mb)
            print(f"{label[t]:8} {keys:>10} {f(ma, 1, 15)} {f(mb, 1, 15)} {f(rr, 3, 6)}  "
                  f"{f(med(rss.get(A)) / 1024, 1, 13)} {f(med(rss.get(B)) / 1024, 1, 13)}")
            summary.append((f"{t.replace('-', '_')}_per_key", rr))
        if "mem" in mem and "mem-ttl" in mem:
            ea = med(D[("mem", "mem-ttl", "bytes_per_key")].get(A)) - med(D[("mem", "mem", "bytes_per_key")].get(A))
            eb = med(D[("mem", "mem-ttl", "bytes_per_key")].get(B)) - med(D[("mem", "mem", "bytes_per_key")].get(B))
            print(f"{'TTL cost':8} {'':>10} {f(ea, 1, 15)} {f(eb, 1, 15)}")
        print(f"   keys 'key:' + 12 digits (16 B), values 32 B")

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

    print(f"\n   ratios are {A}/{B}: *_rps > 1 = {A} faster; *_cpu and *_per_key < 1 = {A} better")
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
