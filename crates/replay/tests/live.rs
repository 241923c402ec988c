//! The live replayer against real servers: a tiny in-test RESP server (an
//! unbounded map) and, when installed, /usr/bin/redis-server without
//! maxmemory. With no eviction only compulsory misses remain, so the live hit
//! counts must equal the infinite-capacity simulation exactly; a SET reordered
//! behind a later GET of its key would show up as a missing hit.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lodestone-replay");

/// Parses the last `RESULT k=v ...` line of an output into a map.
fn result(stdout: &str) -> HashMap<String, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT in {stdout}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn run(args: &[&str]) -> HashMap<String, String> {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    result(&stdout)
}

fn read_command(r: &mut BufReader<TcpStream>) -> Option<Vec<Vec<u8>>> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).ok()?;
        buf.truncate(len);
        args.push(buf);
    }
    Some(args)
}

/// A single-connection RESP server over a HashMap: GET, SET, INFO, DBSIZE, FLUSHALL.
fn fake_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut w = stream.try_clone().unwrap();
            let mut out = Vec::new();
            let mut r = BufReader::new(stream);
            let mut db: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            while let Some(args) = read_command(&mut r) {
                let reply = match args[0].to_ascii_uppercase().as_slice() {
                    b"GET" => match db.get(&args[1]) {
                        Some(v) => [
                            format!("${}\r\n", v.len()).into_bytes(),
                            v.clone(),
                            b"\r\n".to_vec(),
                        ]
                        .concat(),
                        None => b"$-1\r\n".to_vec(),
                    },
                    b"SET" => {
                        db.insert(args[1].clone(), args[2].clone());
                        b"+OK\r\n".to_vec()
                    }
                    b"INFO" => {
                        let body = format!("# Stats\r\nevicted_keys:0\r\nused_memory:{}\r\nused_memory_rss:4096\r\n", db.len());
                        format!("${}\r\n{body}\r\n", body.len()).into_bytes()
                    }
                    b"DBSIZE" => format!(":{}\r\n", db.len()).into_bytes(),
                    b"FLUSHALL" => {
                        db.clear();
                        b"+OK\r\n".to_vec()
                    }
                    _ => b"-ERR unknown command\r\n".to_vec(),
                };
                // Answer a pipeline with one write once its requests are all read.
                out.extend_from_slice(&reply);
                if r.buffer().is_empty() {
                    w.write_all(&out).unwrap();
                    out.clear();
                }
            }
        }
    });
    addr
}

fn check_live_equals_infinite_sim(addr: &str, workload: &str) {
    let common = [
        "--workload",
        workload,
        "--keys",
        "2000",
        "--requests",
        "30000",
        "--seed",
        "11",
        "--warmup",
        "5000",
    ];
    let live = run(&[
        &["live", "--addr", addr, "--pipeline", "64", "--flush"][..],
        &common,
    ]
    .concat());
    let sim = run(&[&["sim", "--policy", "inf"][..], &common].concat());
    for field in ["counted", "hits", "hit_ratio", "byte_hit_ratio"] {
        assert_eq!(live[field], sim[field], "{field} for {workload} at {addr}");
    }
    assert_eq!(live["counted"], "25000");
    assert_eq!(live["keys_end"], sim["objects_end"]);
    assert_eq!(live["evictions"], "0");
    assert_eq!(live["set_errors"], "0");
    assert_eq!(live["size_mismatches"], "0");
    let hits: u64 = live["hits"].parse().unwrap();
    assert!(hits > 10_000 && hits < 25_000, "{hits}");
    for f in ["throughput_rps", "peak_rss", "used_memory_end", "elapsed_s"] {
        assert!(live[f].parse::<f64>().unwrap() > 0.0, "{f}");
    }
}

#[test]
fn live_against_a_fake_server_matches_the_infinite_simulation() {
    let addr = fake_server();
    for w in ["zipf:1.2", "zipf:0.7+ohw:0.2+scan:100:500+shift:3000"] {
        check_live_equals_infinite_sim(&addr, w);
    }
}

#[test]
fn live_against_a_trace_file() {
    let addr = fake_server();
    let path = std::env::temp_dir().join(format!("replay-live-trace-{}", std::process::id()));
    std::fs::write(&path, "a 10\nb 20\na 10\na 10\nc\nb 20\n").unwrap();
    let w = format!("trace:{}", path.display());
    let live = run(&["live", "--addr", &addr, "--workload", &w, "--flush"]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        (live["counted"].as_str(), live["hits"].as_str()),
        ("6", "3")
    );
}

#[test]
fn live_against_redis_server_when_installed() {
    let redis = "/usr/bin/redis-server";
    if !std::path::Path::new(redis).exists() {
        eprintln!("skipped: {redis} not installed");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_s = port.to_string();
    let mut child = Command::new(redis)
        .args([
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    check_live_equals_infinite_sim(&addr, "zipf:0.9+ohw+scan+shift");
    let live = run(&[
        "live",
        "--addr",
        &addr,
        "--workload",
        "zipf:1.0",
        "--keys",
        "500",
        "--requests",
        "2000",
        "--pid",
        &pid,
    ]);
    assert_eq!(live["rss_source"], "vmhwm");
    assert!(live["peak_rss"].parse::<u64>().unwrap() > 1_000_000);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &["live", "--workload", "zipf:0.9"][..],
        &["sim", "--workload", "nope", "--policy", "lru"],
        &[
            "sim",
            "--workload",
            "zipf:0.9",
            "--policy",
            "mru",
            "--capacity-objects",
            "5",
        ],
        &["fly"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
