//! The LATENCY command (Redis's latency.c): the latency monitor's events
//! and the per-command latency histograms. The instruments themselves
//! live in `crate::server::latency`.

use super::{Command, Ctx, Handler, Registry};
use crate::config::HOT;
use crate::server::latency;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
latency|server|-2|2.8.13|-|-|-|A container for latency diagnostics commands.
latency|doctor|server|2|2.8.13|admin,noscript,loading,stale|-|-|Returns a human-readable latency analysis report.
latency|graph|server|3|2.8.13|admin,noscript,loading,stale|-|-|Returns a latency graph for an event.
latency|help|server|2|2.8.13|loading,stale|-|-|Returns helpful text about the different subcommands.
latency|histogram|server|-2|7.0.0|admin,noscript,loading,stale|-|-|Returns the cumulative distribution of latencies of a subset or all commands.
latency|history|server|3|2.8.13|admin,noscript,loading,stale|-|-|Returns timestamp-latency samples for an event.
latency|latest|server|2|2.8.13|admin,noscript,loading,stale|-|-|Returns the latest latency samples for all events.
latency|reset|server|-2|2.8.13|admin,noscript,loading,stale|-|-|Resets the latency data for one or more events.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("latency|doctor", doctor as Handler),
        ("latency|graph", graph),
        ("latency|help", help),
        ("latency|histogram", histogram),
        ("latency|history", history),
        ("latency|latest", latest),
        ("latency|reset", reset),
    ]);
}

fn latest(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let events = latency::latest();
    let mut r = ctx.r();
    r.array(events.len());
    for (name, time, ms, max) in events {
        r.array(4);
        r.bulk(name.as_bytes());
        r.int(time as i64);
        r.int(ms as i64);
        r.int(max as i64);
    }
}

fn history(ctx: &mut Ctx, argv: &[&[u8]]) {
    let samples = latency::history(argv[2]).unwrap_or_default();
    let mut r = ctx.r();
    r.array(samples.len());
    for (time, ms) in samples {
        r.array(2);
        r.int(time as i64);
        r.int(ms as i64);
    }
}

fn graph(ctx: &mut Ctx, argv: &[&[u8]]) {
    match latency::graph(argv[2]) {
        Some(g) => ctx.r().verbatim(g.as_bytes(), "txt"),
        None => ctx.error(&format!(
            "ERR No samples available for event '{}'",
            String::from_utf8_lossy(argv[2])
        )),
    }
}

fn reset(ctx: &mut Ctx, argv: &[&[u8]]) {
    let n = latency::reset(&argv[2..]);
    ctx.r().int(n as i64);
}

fn doctor(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let cfg = &ctx.srv.config;
    let env = latency::DoctorEnv {
        slowlog_slower_than: cfg.num(HOT.slowlog_slower_than),
        hz: cfg.num(HOT.hz),
        fsync_always: cfg.get_str("appendfsync") == "always",
    };
    let text = latency::doctor(&env);
    ctx.r().verbatim(text.as_bytes(), "txt");
}

/// A command's histogram counts merged over the threads' stripes, or None
/// if it recorded nothing since the last reset.
pub fn merged_histogram(c: &Command) -> Option<Vec<u64>> {
    let mut counts = Vec::new();
    for s in c.stats.all() {
        if let Some(h) = s.hist.get() {
            h.add_to(&mut counts);
        }
    }
    counts.iter().any(|&n| n > 0).then_some(counts)
}

fn histogram(ctx: &mut Ctx, argv: &[&[u8]]) {
    let table = &ctx.srv.commands;
    // Commands named (a container stands for its subcommands), in the
    // order asked; all commands without arguments. Unknown names are
    // skipped, as in Redis.
    let mut picked: Vec<&Command> = Vec::new();
    if argv.len() == 2 {
        picked.extend(table.cmds.iter());
    } else {
        for name in &argv[2..] {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let Some(c) = table.by_full_name(name) else {
                continue;
            };
            picked.push(c);
            picked.extend(c.subcommands.iter().map(|&i| &table.cmds[i]));
        }
    }
    let data: Vec<(&str, Vec<u64>)> = picked
        .into_iter()
        .filter_map(|c| merged_histogram(c).map(|h| (c.name.as_str(), h)))
        .collect();
    let mut r = ctx.r();
    r.map(data.len());
    for (name, counts) in data {
        r.bulk(name.as_bytes());
        r.map(2);
        r.bulk(b"calls");
        r.int(counts.iter().sum::<u64>() as i64);
        r.bulk(b"histogram_usec");
        let buckets = latency::log_buckets(&counts);
        r.map(buckets.len());
        for (us, n) in buckets {
            r.int(us);
            r.int(n as i64);
        }
    }
}

fn help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}
