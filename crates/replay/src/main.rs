//! lodestone-replay: replays a cache workload against a Redis-protocol server
//! (`live`) or through simulated eviction policies (`sim`). Every run ends
//! with `RESULT key=value ...` lines for scripts.

use replay::live::{run_live, LiveOptions};
use replay::sim;
use replay::workload::{Generator, Params, Request, Spec};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: lodestone-replay live --addr HOST:PORT --workload W [options]
       lodestone-replay sim --workload W --capacity-objects C[,C...] --policy P[,P...] [options]

workloads (W): zipf:ALPHA[+ohw[:FRACTION]][+scan[:LEN[:EVERY]]][+shift[:EVERY]]
               trace:PATH   (one key per line, optional size column)
  ohw: that fraction of requests (default 0.25) goes to never-repeated keys
  scan: after every EVERY requests (default: keys) a sequential sweep of LEN keys
        (default: keys/10), each sweep continuing where the last one stopped
  shift: every EVERY requests (default: keys) the popular keys move elsewhere

common options:
  --keys N             distinct keys of a zipf workload (default 1000000)
  --requests N         requests to replay (default 10 x keys; trace: whole file)
  --seed S             workload seed (default 1); printed in every report
  --value-size A-B|N   value bytes, fixed per key by a hash of its id (default 64-512)
  --warmup N|P%        requests replayed before counting starts (default 0)
live options:
  --pipeline N         requests per batch (default 64); a repeated key ends a batch
  --pid PID            the server's pid: peak RSS from /proc/PID/status VmHWM
  --flush              FLUSHALL first
sim options:
  --policy P,...       lru sampled-lru:N lfu:N random s3fifo belady inf
  --capacity-objects C,...   object counts to simulate
  --rate R             requests per second mapped onto Redis's LRU seconds and LFU
                       decay minutes (default 0: exact logical time, no decay)
";

fn die(msg: &str) -> ! {
    eprintln!("lodestone-replay: {msg}");
    std::process::exit(2);
}

fn parse_num(name: &str, v: &str) -> u64 {
    let v = v.replace('_', "");
    if let Some((m, e)) = v.split_once('e') {
        if let (Ok(m), Ok(e)) = (m.parse::<u64>(), e.parse::<u32>()) {
            return m * 10u64.pow(e);
        }
    }
    v.parse()
        .unwrap_or_else(|_| die(&format!("{name} needs a whole number, got '{v}'")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first().cloned() else {
        die(USAGE)
    };
    if mode == "-h" || mode == "--help" || mode == "help" {
        print!("{USAGE}");
        return;
    }
    let mut opts: HashMap<String, String> = HashMap::new();
    let mut i = 1;
    while i < args.len() {
        let name = args[i]
            .strip_prefix("--")
            .unwrap_or_else(|| die(&format!("unexpected argument '{}'\n{USAGE}", args[i])));
        if name == "flush" {
            opts.insert(name.into(), "1".into());
            i += 1;
            continue;
        }
        let value = args
            .get(i + 1)
            .unwrap_or_else(|| die(&format!("--{name} needs a value")));
        opts.insert(name.into(), value.clone());
        i += 2;
    }
    let known: &[&str] = match mode.as_str() {
        "live" => &[
            "addr",
            "workload",
            "keys",
            "requests",
            "seed",
            "value-size",
            "warmup",
            "pipeline",
            "pid",
            "flush",
            "rss-every-ms",
        ],
        "sim" => &[
            "workload",
            "keys",
            "requests",
            "seed",
            "value-size",
            "warmup",
            "policy",
            "capacity-objects",
            "rate",
        ],
        _ => die(&format!("unknown mode '{mode}'\n{USAGE}")),
    };
    if let Some(bad) = opts.keys().find(|k| !known.contains(&k.as_str())) {
        die(&format!("unknown option --{bad} for {mode}"));
    }
    let get = |k: &str| opts.get(k).map(String::as_str);
    let workload = get("workload").unwrap_or_else(|| die("--workload is required"));
    let spec = Spec::parse(workload).unwrap_or_else(|e| die(&e));
    let keys = get("keys")
        .map(|v| parse_num("--keys", v))
        .unwrap_or(1_000_000);
    let requests = match get("requests") {
        Some(v) => parse_num("--requests", v),
        None if spec.trace.is_some() => 0,
        None => keys * 10,
    };
    let seed = get("seed").map(|v| parse_num("--seed", v)).unwrap_or(1);
    let (size_min, size_max) = match get("value-size").unwrap_or("64-512").split_once('-') {
        Some((a, b)) => (
            parse_num("--value-size", a) as u32,
            parse_num("--value-size", b) as u32,
        ),
        None => {
            let n = parse_num("--value-size", get("value-size").unwrap()) as u32;
            (n, n)
        }
    };
    let params = Params {
        keys,
        requests,
        seed,
        size_min,
        size_max,
    };
    let mut gen = Generator::new(&spec, &params).unwrap_or_else(|e| die(&e));
    let warmup_text = get("warmup").unwrap_or("0");
    let warmup = match warmup_text.strip_suffix('%') {
        Some(p) => {
            if requests == 0 {
                die("--warmup P% needs --requests");
            }
            let p: f64 = p.parse().unwrap_or_else(|_| die("bad --warmup percentage"));
            (requests as f64 * p / 100.0) as u64
        }
        None => parse_num("--warmup", warmup_text),
    };
    let common = format!(
        "workload={workload} seed={seed} keys={keys} requests={requests} value_size={size_min}-{size_max} warmup={warmup}"
    );
    println!("# lodestone-replay {mode} {common}");

    if mode == "live" {
        let lo = LiveOptions {
            addr: get("addr")
                .unwrap_or_else(|| die("--addr is required"))
                .to_string(),
            pipeline: get("pipeline")
                .map(|v| parse_num("--pipeline", v) as usize)
                .unwrap_or(64),
            warmup,
            pid: get("pid").map(|v| parse_num("--pid", v) as u32),
            rss_every: Duration::from_millis(
                get("rss-every-ms")
                    .map(|v| parse_num("--rss-every-ms", v))
                    .unwrap_or(200),
            ),
            flush: get("flush").is_some(),
        };
        let r = run_live(&lo, &mut gen)
            .unwrap_or_else(|e| die(&format!("live replay against {}: {e}", lo.addr)));
        if let Some(e) = &r.set_error_text {
            eprintln!(
                "lodestone-replay: {} SETs refused, first: {e}",
                r.set_errors
            );
        }
        println!(
            "RESULT mode=live {common} addr={} pipeline={} sent={} counted={} hits={} hit_ratio={:.6} \
             byte_hit_ratio={:.6} evictions={} set_errors={} size_mismatches={} keys_end={} used_memory_end={} \
             used_memory_peak={} peak_rss={} rss_source={} elapsed_s={:.3} throughput_rps={:.0}",
            lo.addr,
            lo.pipeline,
            r.sent,
            r.requests,
            r.hits,
            ratio(r.hits, r.requests),
            ratio(r.hit_bytes, r.bytes),
            r.evictions,
            r.set_errors,
            r.size_mismatches,
            r.keys_end,
            r.used_memory_end,
            r.used_memory_peak,
            r.peak_rss,
            r.rss_source,
            r.elapsed.as_secs_f64(),
            r.throughput(),
        );
        return;
    }

    let policies: Vec<&str> = get("policy")
        .unwrap_or_else(|| die("--policy is required"))
        .split(',')
        .collect();
    let caps_text = match get("capacity-objects") {
        Some(c) => c,
        None if policies == ["inf"] => "1",
        None => die("--capacity-objects is required"),
    };
    let caps: Vec<usize> = caps_text
        .split(',')
        .map(|c| parse_num("--capacity-objects", c) as usize)
        .collect();
    let rate = get("rate").map(|v| parse_num("--rate", v)).unwrap_or(0);
    let t0 = Instant::now();
    let trace: Vec<Request> = gen.by_ref().collect();
    if let Some(e) = gen.error.take() {
        die(&e);
    }
    let mut seen = HashSet::with_capacity(trace.len() / 4);
    let mut distinct_bytes = 0u64;
    for r in &trace {
        if seen.insert(r.id) {
            distinct_bytes += r.size as u64;
        }
    }
    println!(
        "TRACE {common} length={} distinct_keys={} distinct_value_bytes={} generate_s={:.3}",
        trace.len(),
        seen.len(),
        distinct_bytes,
        t0.elapsed().as_secs_f64()
    );
    drop(seen);
    for &cap in &caps {
        for &p in &policies {
            let t = Instant::now();
            let mut policy =
                sim::build(p, cap, seed, rate, Some(&trace)).unwrap_or_else(|e| die(&e));
            let r = sim::run(policy.as_mut(), &trace, warmup);
            println!(
                "RESULT mode=sim {common} policy={p} capacity_objects={cap} rate={rate} counted={} hits={} \
                 hit_ratio={:.6} byte_hit_ratio={:.6} evictions={} objects_end={} elapsed_s={:.3}",
                r.requests,
                r.hits,
                ratio(r.hits, r.requests),
                ratio(r.hit_bytes, r.bytes),
                r.evictions,
                r.objects_end,
                t.elapsed().as_secs_f64()
            );
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
