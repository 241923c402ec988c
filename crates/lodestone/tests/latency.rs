//! LATENCY (the latency monitor and command histograms), INFO
//! latencystats and DEBUG STALLS, over TCP.

mod common;
use common::*;
use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
        other => panic!("not an aggregate: {other:?}"),
    }
}

#[test]
fn monitor_records_slow_commands_per_event() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = s.client();
    // Off by default: nothing is recorded.
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.02"]);
    let latest: Value = q(&mut c, &["LATENCY", "LATEST"]);
    assert_eq!(items(&latest).len(), 0);
    let report: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(
        report.starts_with("I'm sorry, Dave, I can't do that."),
        "{report}"
    );

    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "100"],
    );
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.15"]);
    let latest: Value = q(&mut c, &["LATENCY", "LATEST"]);
    let ev = items(&latest)
        .into_iter()
        .map(|e| items(&e))
        .find(|e| text(&e[0]) == "command")
        .expect("a command event");
    let (time, ms, max) = (int(&ev[1]), int(&ev[2]), int(&ev[3]));
    assert!(ms >= 150 && max >= ms, "{ev:?}");
    let hist: Value = q(&mut c, &["LATENCY", "HISTORY", "command"]);
    let hist = items(&hist);
    assert_eq!(hist.len(), 1);
    assert_eq!(int(&items(&hist[0])[0]), time);
    assert_eq!(int(&items(&hist[0])[1]), ms);

    let graph: String = q(&mut c, &["LATENCY", "GRAPH", "command"]);
    assert!(
        graph.starts_with(&format!(
            "command - high {ms} ms, low {ms} ms (all time high {max} ms)\n"
        )),
        "{graph}"
    );
    assert!(graph.contains(&format!("{}\n", "-".repeat(80))));
    let report: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(report.contains("1. command: 1 latency spikes"), "{report}");
    assert!(report.contains("Check your Slow Log"), "{report}");

    // Unknown events: empty history, no reset, an error for GRAPH.
    let none: Value = q(&mut c, &["LATENCY", "HISTORY", "blabla"]);
    assert_eq!(items(&none).len(), 0);
    assert_eq!(q::<i64>(&mut c, &["LATENCY", "RESET", "blabla"]), 0);
    assert_eq!(
        qerr(&mut c, &["LATENCY", "GRAPH", "blabla"]),
        "ERR No samples available for event 'blabla'"
    );
    // Event names are matched case-insensitively by RESET only.
    let up: Value = q(&mut c, &["LATENCY", "HISTORY", "COMMAND"]);
    assert_eq!(items(&up).len(), 0);
    assert!(q::<i64>(&mut c, &["LATENCY", "RESET", "COMMAND"]) >= 1);
    let after: Value = q(&mut c, &["LATENCY", "HISTORY", "command"]);
    assert_eq!(items(&after).len(), 0);
    let _: i64 = q(&mut c, &["LATENCY", "RESET"]);
    let latest: Value = q(&mut c, &["LATENCY", "LATEST"]);
    assert_eq!(items(&latest).len(), 0);
}

#[test]
fn histograms_per_command() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    // After a reset only CONFIG RESETSTAT itself has a histogram.
    let all: Value = q(&mut c, &["LATENCY", "HISTOGRAM"]);
    let all = items(&all);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(text(&all[0]), "config|resetstat");

    let _: () = q(&mut c, &["SET", "a", "b"]);
    let _: () = q(&mut c, &["SET", "c", "d"]);
    let _: String = q(&mut c, &["GET", "a"]);
    let _: i64 = q(&mut c, &["CLIENT", "ID"]);
    let h: Value = q(&mut c, &["LATENCY", "HISTOGRAM", "blabla", "set", "GET"]);
    let h = items(&h);
    assert_eq!(h.len(), 4);
    assert_eq!(text(&h[0]), "set");
    let set = items(&h[1]);
    assert_eq!(text(&set[0]), "calls");
    assert_eq!(int(&set[1]), 2);
    assert_eq!(text(&set[2]), "histogram_usec");
    let buckets = items(&set[3]);
    assert!(!buckets.is_empty() && buckets.len().is_multiple_of(2));
    // Cumulative counts grow to the number of calls; the bucket bounds
    // are Redis's (1, 2, 4, 8, 16, 33, 66 ... µs).
    let mut last = 0;
    for pair in buckets.chunks(2) {
        let (us, n) = (int(&pair[0]), int(&pair[1]));
        assert!(n > last);
        assert!(
            [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227].contains(&us),
            "{us}"
        );
        last = n;
    }
    assert_eq!(last, 2);
    assert_eq!(text(&h[2]), "get");
    // A container stands for its subcommands.
    let h: Value = q(&mut c, &["LATENCY", "HISTOGRAM", "client"]);
    let h = items(&h);
    assert_eq!(h.len(), 2);
    assert_eq!(text(&h[0]), "client|id");

    let info: String = q(&mut c, &["INFO", "latencystats"]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("latency_percentiles_usec_set:p50=")
                && l.contains(",p99=")
                && l.contains(",p99.9=")),
        "{info}"
    );

    // latency-tracking no: nothing more is recorded, INFO lists nothing.
    let _: () = q(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    let _: () = q(&mut c, &["SET", "a", "b"]);
    let h: Value = q(&mut c, &["LATENCY", "HISTOGRAM", "set"]);
    assert_eq!(int(&items(&items(&h)[1])[1]), 2);
    let info: String = q(&mut c, &["INFO", "latencystats"]);
    assert!(!info.contains("latency_percentiles_usec_"), "{info}");
}

#[test]
fn help_and_arity_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let help: Vec<String> = q(&mut c, &["LATENCY", "HELP"]);
    assert_eq!(
        help[0],
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(help.len(), 17);
    assert!(qerr(&mut c, &["LATENCY", "HELP", "xxx"])
        .contains("wrong number of arguments for 'latency|help' command"));
    assert!(qerr(&mut c, &["LATENCY", "HISTORY"])
        .contains("wrong number of arguments for 'latency|history' command"));
    assert!(qerr(&mut c, &["LATENCY", "NOPE"]).contains("unknown subcommand 'NOPE'"));
    if let Some(r) = RealRedis::start(&[]) {
        // (Redis 7.0 says "Prints this help." where 7.2 says "Print".)
        let theirs: Vec<String> = q(&mut r.client(), &["LATENCY", "HELP"]);
        assert_eq!(help[..help.len() - 1], theirs[..theirs.len() - 1]);
    }
}

#[test]
fn debug_stalls_reports_loop_passes() {
    let s = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["DEBUG", "STALLS", "CPU", "1"]);
    for _ in 0..10 {
        let _: String = q(&mut c, &["PING"]);
    }
    let report: String = q(&mut c, &["DEBUG", "STALLS"]);
    assert!(report.contains("worker-pass count="), "{report}");
    assert!(report.contains("worker-pass cpu_count="), "{report}");
    let _: () = q(&mut c, &["DEBUG", "STALLS", "RESET"]);
    assert!(qerr(&mut c, &["DEBUG", "STALLS", "nope"]).contains("syntax error"));
}
