//! Server administration: INFO, CONFIG, TIME, LASTSAVE, DEBUG, SHUTDOWN,
//! SLOWLOG, MEMORY and LOLWUT.

use super::{err, Ctx, Handler, Registry};
use crate::config::{self, SetError, HOT};
use crate::keyspace::{Entry, Str, Value};
use crate::server::{now_us, Server};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use strutil::parse_i64;

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("info", info as Handler),
        ("config|get", config_get),
        ("config|set", config_set),
        ("config|resetstat", config_resetstat),
        ("config|rewrite", config_rewrite),
        ("config|help", config_help),
        ("time", time),
        ("lastsave", lastsave),
        ("debug", debug),
        ("bgrewriteaof", bgrewriteaof),
        ("shutdown", shutdown),
        ("slowlog|get", slowlog_get),
        ("slowlog|len", slowlog_len),
        ("slowlog|reset", slowlog_reset),
        ("slowlog|help", slowlog_help),
        ("memory|usage", memory_usage),
        ("memory|doctor", memory_doctor),
        ("memory|purge", memory_purge),
        ("memory|stats", memory_stats),
        ("memory|malloc-stats", memory_malloc_stats),
        ("memory|help", memory_help),
        ("lolwut", lolwut),
        ("monitor", monitor),
        ("module|help", module_help),
        ("module|list", module_list),
        ("module|load", module_load),
        ("module|loadex", module_load),
        ("module|unload", module_unload),
    ]);
}

/// Every figure INFO memory and MEMORY STATS report, gathered once.
pub struct MemInfo {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub clients_normal: u64,
    pub not_counted: u64,
    /// Hash table memory per database (db, bytes, keys).
    pub tables: Vec<(usize, u64, u64)>,
    pub overhead: u64,
    pub dataset: u64,
    pub keys: u64,
}

/// Gathers the memory figures: used_memory from the per-thread counters,
/// the allocator's own view, RSS, client buffers and table overhead
/// (locks each shard briefly).
pub fn mem_info(srv: &Server) -> MemInfo {
    use crate::server::memory;
    let used = memory::used();
    let peak = memory::note_peak(used);
    let (allocated, active, resident, _) = memory::allocator_stats();
    let clients_normal: u64 = srv.clients.lock().values().map(|h| h.memory() as u64).sum();
    let mut tables = Vec::new();
    let mut keys = 0;
    for db in 0..srv.keyspace.db_count() {
        let (mut bytes, mut n) = (0u64, 0u64);
        for sh in srv.keyspace.db(db).allocated().unwrap_or_default() {
            let sh = sh.lock();
            bytes += sh.table_bytes() as u64;
            n += sh.len() as u64;
        }
        keys += n;
        if n > 0 {
            tables.push((db, bytes, n));
        }
    }
    // The S3-FIFO ghost is process-wide: counted with the first database
    // (in the overhead anyway).
    let mut ghost = crate::keyspace::s3fifo::GLOBAL.ghost_bytes() as u64;
    if let Some(t) = tables.first_mut() {
        t.1 += std::mem::take(&mut ghost);
    }
    let startup = memory::STARTUP.load(Ordering::Relaxed);
    let not_counted = memory::NOT_COUNTED.load(Ordering::Relaxed);
    let overhead =
        startup + clients_normal + not_counted + ghost + tables.iter().map(|t| t.1).sum::<u64>();
    MemInfo {
        used,
        peak,
        startup,
        rss: memory::rss(),
        allocated,
        active,
        resident,
        clients_normal,
        not_counted,
        tables,
        overhead,
        dataset: used.saturating_sub(overhead),
        keys,
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

fn rusage() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid start.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Builds the INFO text for the requested sections (Redis 7 accepts several).
pub fn info_text(srv: &Server, args: &[&[u8]], now_ms: u64) -> String {
    let mut wanted: Vec<String> = Vec::new();
    if args.is_empty() {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" => wanted.extend(ALL_SECTIONS.iter().map(|s| s.to_string())),
            "everything" => {
                wanted.extend(ALL_SECTIONS.iter().map(|s| s.to_string()));
                wanted.push("latencystats".into());
            }
            _ => wanted.push(a),
        }
    }
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|s| seen.insert(s.clone()));
    let mut out = String::new();
    for s in &wanted {
        let before = out.len();
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        if !info_section(srv, s, now_ms, &mut out) {
            out.truncate(before);
        }
    }
    out
}

fn info_section(srv: &Server, name: &str, now_ms: u64, o: &mut String) -> bool {
    let st = &srv.stats;
    let uptime = srv.started.elapsed().as_secs();
    macro_rules! line {
        ($($arg:tt)*) => {{ let _ = write!(o, $($arg)*); o.push_str("\r\n"); }};
    }
    match name {
        "server" => {
            o.push_str("# Server\r\n");
            line!("redis_version:{}", crate::REDIS_VERSION);
            line!("redis_git_sha1:00000000");
            line!("redis_git_dirty:0");
            line!("redis_build_id:0");
            line!("lodestone_version:{}", env!("CARGO_PKG_VERSION"));
            line!("redis_mode:standalone");
            line!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH);
            line!("arch_bits:64");
            line!("monotonic_clock:POSIX clock_gettime");
            line!("multiplexing_api:epoll");
            line!("atomicvar_api:c11-builtin");
            line!("gcc_version:0.0.0");
            line!("process_id:{}", std::process::id());
            line!("process_supervised:no");
            line!("run_id:{}", srv.run_id);
            line!("tcp_port:{}", srv.tcp_port.load(Ordering::Relaxed));
            line!("server_time_usec:{}", now_us());
            line!("uptime_in_seconds:{}", uptime);
            line!("uptime_in_days:{}", uptime / 86400);
            line!("hz:{}", srv.config.num(HOT.hz));
            line!("configured_hz:{}", srv.config.num(HOT.hz));
            line!("lru_clock:{}", crate::keyspace::lru::lru_clock(now_ms));
            line!("executable:{}", srv.executable);
            line!(
                "config_file:{}",
                srv.config_file.clone().unwrap_or_default()
            );
            line!("io_threads_active:0");
            line!("threads:{}", srv.worker_count.load(Ordering::Relaxed));
        }
        "clients" => {
            o.push_str("# Clients\r\n");
            line!(
                "connected_clients:{}",
                srv.connected.load(Ordering::Relaxed)
            );
            line!("cluster_connections:0");
            line!("maxclients:{}", srv.config.num(HOT.maxclients));
            let (max_in, max_out) = srv.clients.lock().values().fold((0, 0), |(i, o), h| {
                (
                    i.max(h.qbuf_mem.load(Ordering::Relaxed)),
                    o.max(h.omem.load(Ordering::Relaxed)),
                )
            });
            line!("client_recent_max_input_buffer:{}", max_in);
            line!("client_recent_max_output_buffer:{}", max_out);
            line!(
                "blocked_clients:{}",
                srv.waiters.blocked_clients.load(Ordering::Relaxed)
            );
            line!(
                "tracking_clients:{}",
                srv.tracking.clients.load(Ordering::Relaxed)
            );
            line!("clients_in_timeout_table:0");
            line!("total_blocking_keys:{}", srv.waiters.key_count());
            line!("total_blocking_keys_on_nokey:0");
        }
        "memory" => {
            let m = mem_info(srv);
            let maxmem = srv.config.num(HOT.maxmemory) as u64;
            let total = crate::server::memory::total_system_memory();
            o.push_str("# Memory\r\n");
            line!("used_memory:{}", m.used);
            line!("used_memory_human:{}", human(m.used));
            line!("used_memory_rss:{}", m.rss);
            line!("used_memory_rss_human:{}", human(m.rss));
            line!("used_memory_peak:{}", m.peak);
            line!("used_memory_peak_human:{}", human(m.peak));
            line!(
                "used_memory_peak_perc:{:.2}%",
                ratio(m.used, m.peak) * 100.0
            );
            line!("used_memory_overhead:{}", m.overhead);
            line!("used_memory_startup:{}", m.startup);
            line!("used_memory_dataset:{}", m.dataset);
            line!(
                "used_memory_dataset_perc:{:.2}%",
                ratio(m.dataset, m.used.saturating_sub(m.startup)) * 100.0
            );
            line!("allocator_allocated:{}", m.allocated);
            line!("allocator_active:{}", m.active);
            line!("allocator_resident:{}", m.resident);
            line!("total_system_memory:{}", total);
            line!("total_system_memory_human:{}", human(total));
            // Lua memory of the calling thread's states (each worker has its own).
            let lua_eval = crate::scripting::eval_memory().max(31744);
            let lua_fn = crate::scripting::functions::functions_memory().max(32768);
            let sc = &srv.scripting;
            let scripts_mem = sc.scripts_mem.load(std::sync::atomic::Ordering::Relaxed);
            let (nlibs, nfuncs) = {
                let l = sc.libs.read();
                (l.libs.len(), l.function_count())
            };
            line!("used_memory_lua:{}", lua_eval);
            line!("used_memory_vm_eval:{}", lua_eval);
            line!("used_memory_lua_human:{}", human(lua_eval as u64));
            line!("used_memory_scripts_eval:{}", scripts_mem);
            line!("number_of_cached_scripts:{}", sc.scripts.read().len());
            line!("number_of_functions:{}", nfuncs);
            line!("number_of_libraries:{}", nlibs);
            line!("used_memory_vm_functions:{}", lua_fn);
            line!("used_memory_vm_total:{}", lua_eval + lua_fn);
            line!(
                "used_memory_vm_total_human:{}",
                human((lua_eval + lua_fn) as u64)
            );
            line!("used_memory_functions:0");
            line!("used_memory_scripts:{}", scripts_mem);
            line!("used_memory_scripts_human:{}", human(scripts_mem as u64));
            line!("maxmemory:{}", maxmem);
            line!("maxmemory_human:{}", human(maxmem));
            line!(
                "maxmemory_policy:{}",
                srv.config.get_str("maxmemory-policy")
            );
            line!("allocator_frag_ratio:{:.2}", ratio(m.active, m.allocated));
            line!(
                "allocator_frag_bytes:{}",
                m.active as i64 - m.allocated as i64
            );
            line!("allocator_rss_ratio:{:.2}", ratio(m.resident, m.active));
            line!(
                "allocator_rss_bytes:{}",
                m.resident as i64 - m.active as i64
            );
            line!("rss_overhead_ratio:{:.2}", ratio(m.rss, m.resident));
            line!("rss_overhead_bytes:{}", m.rss as i64 - m.resident as i64);
            line!("mem_fragmentation_ratio:{:.2}", ratio(m.rss, m.used));
            line!("mem_fragmentation_bytes:{}", m.rss as i64 - m.used as i64);
            line!("mem_not_counted_for_evict:{}", m.not_counted);
            line!(
                "mem_replication_backlog:{}",
                crate::repl::backlog_bytes(srv)
            );
            line!("mem_total_replication_buffers:0");
            line!("mem_clients_slaves:0");
            line!("mem_clients_normal:{}", m.clients_normal);
            line!("mem_cluster_links:0");
            line!("mem_aof_buffer:0");
            line!("mem_allocator:jemalloc");
            line!("active_defrag_running:0");
            line!(
                "lazyfree_pending_objects:{}",
                crate::server::lazyfree::pending()
            );
            line!("lazyfreed_objects:{}", crate::server::lazyfree::freed());
        }
        "persistence" => {
            o.push_str("# Persistence\r\n");
            crate::persist::info_lines(srv, &mut |l| {
                o.push_str(&l);
                o.push_str("\r\n");
            });
            crate::aof::info(srv, o);
            line!("module_fork_in_progress:0");
            line!("module_fork_last_cow_size:0");
        }
        "stats" => {
            let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            o.push_str("# Stats\r\n");
            line!("total_connections_received:{}", g(&st.total_connections));
            line!("total_commands_processed:{}", st.total_commands.get());
            line!("instantaneous_ops_per_sec:0");
            line!("total_net_input_bytes:{}", st.net_input_bytes.get());
            line!("total_net_output_bytes:{}", st.net_output_bytes.get());
            line!("total_net_repl_input_bytes:0");
            line!("total_net_repl_output_bytes:0");
            line!("instantaneous_input_kbps:0.00");
            line!("instantaneous_output_kbps:0.00");
            line!("rejected_connections:{}", g(&st.rejected_connections));
            let rp = &srv.repl;
            line!("sync_full:{}", rp.sync_full.load(Ordering::Relaxed));
            line!(
                "sync_partial_ok:{}",
                rp.sync_partial_ok.load(Ordering::Relaxed)
            );
            line!(
                "sync_partial_err:{}",
                rp.sync_partial_err.load(Ordering::Relaxed)
            );
            line!("expired_keys:{}", crate::server::stats::EXPIRED_KEYS.get());
            line!("expired_stale_perc:0.00");
            line!("expired_time_cap_reached_count:0");
            line!("expire_cycle_cpu_milliseconds:0");
            line!("evicted_keys:{}", g(&st.evicted_keys));
            line!(
                "evicted_clients:{}",
                crate::server::evict::EVICTED_CLIENTS.load(Ordering::Relaxed)
            );
            let (total_ex, cur_ex) = crate::server::evict::exceeded_times(srv);
            line!("total_eviction_exceeded_time:{}", total_ex);
            line!("current_eviction_exceeded_time:{}", cur_ex);
            line!("keyspace_hits:{}", st.keyspace_hits.get());
            line!("keyspace_misses:{}", st.keyspace_misses.get());
            line!("pubsub_channels:{}", srv.pubsub.channel_count());
            line!("pubsub_patterns:{}", srv.pubsub.pattern_count());
            line!("pubsubshard_channels:{}", srv.pubsub.shard_channel_count());
            line!("latest_fork_usec:0");
            line!("total_forks:0");
            line!("migrate_cached_sockets:{}", srv.migrate_sockets.len());
            line!("slave_expires_tracked_keys:0");
            line!("active_defrag_hits:0");
            line!("active_defrag_misses:0");
            line!("active_defrag_key_hits:0");
            line!("active_defrag_key_misses:0");
            line!("total_active_defrag_time:0");
            line!("current_active_defrag_time:0");
            let (keys, items, prefixes) = srv.tracking.totals();
            line!("tracking_total_keys:{keys}");
            line!("tracking_total_items:{items}");
            line!("tracking_total_prefixes:{prefixes}");
            line!(
                "unexpected_error_replies:{}",
                g(&st.unexpected_error_replies)
            );
            line!("total_error_replies:{}", g(&st.total_error_replies));
            line!("dump_payload_sanitizations:0");
            line!("total_reads_processed:0");
            line!("total_writes_processed:0");
            line!("io_threaded_reads_processed:0");
            line!("io_threaded_writes_processed:0");
            line!(
                "client_query_buffer_limit_disconnections:{}",
                g(&st.client_qbuf_limit_disconnections)
            );
            line!(
                "client_output_buffer_limit_disconnections:{}",
                g(&st.client_outbuf_limit_disconnections)
            );
            line!("reply_buffer_shrinks:0");
            line!("reply_buffer_expands:0");
            line!("eventloop_cycles:0");
            line!("eventloop_duration_sum:0");
            line!("eventloop_duration_cmd_sum:0");
            line!("instantaneous_eventloop_cycles_per_sec:0");
            line!("instantaneous_eventloop_duration_usec:0");
            for (i, what) in ["auth", "cmd", "key", "channel"].iter().enumerate() {
                let n = srv.acl.denied[i].load(Ordering::Relaxed);
                line!("acl_access_denied_{what}:{n}");
            }
        }
        "replication" => {
            o.push_str(&crate::repl::info(srv));
        }
        "cpu" => {
            let (sys, user) = rusage();
            o.push_str("# CPU\r\n");
            line!("used_cpu_sys:{:.6}", sys);
            line!("used_cpu_user:{:.6}", user);
            line!("used_cpu_sys_children:0.000000");
            line!("used_cpu_user_children:0.000000");
            line!("used_cpu_sys_main_thread:{:.6}", sys);
            line!("used_cpu_user_main_thread:{:.6}", user);
        }
        "modules" => {
            o.push_str("# Modules\r\n");
        }
        "commandstats" => {
            o.push_str("# Commandstats\r\n");
            for c in &srv.commands.cmds {
                let (calls, usec, rejected, failed) = c.stats.totals();
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let per = if calls > 0 {
                    usec as f64 / calls as f64
                } else {
                    0.0
                };
                line!(
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls={},failed_calls={}",
                    c.name,
                    calls,
                    usec,
                    per,
                    rejected,
                    failed
                );
            }
        }
        "errorstats" => {
            o.push_str("# Errorstats\r\n");
            for (k, v) in st.errors.lock().iter() {
                line!("errorstat_{}:count={}", k, v);
            }
        }
        "cluster" => {
            o.push_str("# Cluster\r\n");
            line!("cluster_enabled:0");
        }
        "keyspace" => {
            o.push_str("# Keyspace\r\n");
            for db in 0..srv.keyspace.db_count() {
                let (keys, expires) = srv.keyspace.db(db).counts();
                if keys > 0 {
                    line!("db{}:keys={},expires={},avg_ttl=0", db, keys, expires);
                }
            }
        }
        "latencystats" => {
            o.push_str("# Latencystats\r\n");
            if srv.config.get_bool("latency-tracking") {
                let pcts: Vec<f64> = srv
                    .config
                    .get_str("latency-tracking-info-percentiles")
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                for c in &srv.commands.cmds {
                    let Some(h) = super::latency::merged_histogram(c) else {
                        continue;
                    };
                    let vals: Vec<String> = pcts
                        .iter()
                        .map(|&p| {
                            let ns = crate::server::latency::value_at_percentile(&h, p);
                            format!("p{}={:.3}", p, ns as f64 / 1000.0)
                        })
                        .collect();
                    line!("latency_percentiles_usec_{}:{}", c.name, vals.join(","));
                }
            }
        }
        _ => return false,
    }
    // Sections end without the final CRLF; the joiner adds separators.
    if o.ends_with("\r\n") {
        o.truncate(o.len() - 2);
    }
    true
}

fn info(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut text = info_text(ctx.srv, &argv[1..], ctx.now_ms);
    text.push_str("\r\n");
    ctx.r().verbatim(text.as_bytes(), "txt");
}

fn config_get(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    for pat in &argv[2..] {
        for (k, v) in ctx.srv.config.matching(pat) {
            if !pairs.iter().any(|(n, _)| *n == k) {
                pairs.push((k, v));
            }
        }
    }
    let mut r = ctx.r();
    r.map(pairs.len());
    for (k, v) in pairs {
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
}

fn config_set(ctx: &mut Ctx, argv: &[&[u8]]) {
    let args = &argv[2..];
    if !args.len().is_multiple_of(2) {
        return ctx.error("ERR wrong number of arguments for 'config|set' command");
    }
    let cfg = &ctx.srv.config;
    let mut names: Vec<&'static str> = Vec::new();
    // Validate everything first so a failed CONFIG SET changes nothing.
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).into_owned();
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        let Some((_, p)) = config::lookup(&name) else {
            return ctx.error(&format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        if names.contains(&p.name) {
            return ctx.error(&format!("ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"));
        }
        names.push(p.name);
        match cfg.check(&name, &value, false) {
            Ok(()) => {}
            Err(SetError::Immutable) => {
                return ctx.error(&format!("ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"))
            }
            Err(SetError::Invalid(why)) => {
                return ctx.error(&format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
            }
            Err(SetError::Unknown) => unreachable!(),
        }
    }
    // Redis's apply step for port / bind: listen on the new addresses
    // before anything changes, so a failure leaves every value as it was.
    if names.contains(&"port") || names.contains(&"bind") {
        let new_of = |p: &str| {
            args.chunks(2)
                .find(|pair| {
                    config::lookup(&String::from_utf8_lossy(pair[0])).map(|x| x.1.name) == Some(p)
                })
                .map(|pair| String::from_utf8_lossy(pair[1]).into_owned())
        };
        let port = new_of("port").unwrap_or_else(|| cfg.get_num("port").to_string());
        let bind = new_of("bind").unwrap_or_else(|| cfg.get_str("bind"));
        let changed = port != cfg.get_num("port").to_string() || bind != cfg.get_str("bind");
        if changed {
            let port_num = port.parse::<u16>().unwrap_or(0);
            if let Err(e) = crate::server::net::rebind(ctx.srv, &bind, port_num) {
                crate::persist::log(&e.to_string());
                let (arg, why) = if names.contains(&"port") {
                    ("port", "Unable to listen on this port. Check server logs.")
                } else {
                    ("bind", "Failed to bind to specified addresses.")
                };
                return ctx.error(&format!(
                    "ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}"
                ));
            }
        }
    }
    for pair in args.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).into_owned();
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        if let Err(SetError::Invalid(why)) = cfg.set(&name, &value) {
            return ctx.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
        }
    }
    ctx.srv.apply_config();
    crate::aof::config_changed(ctx.srv);
    ctx.ok();
}

fn config_resetstat(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.srv.stats.reset();
    crate::server::evict::reset_stats();
    crate::server::lazyfree::reset_stats();
    for c in &ctx.srv.commands.cmds {
        c.stats.reset();
    }
    ctx.ok();
}

fn config_rewrite(ctx: &mut Ctx, _argv: &[&[u8]]) {
    // The users as they are now (ACL SETUSER changes included).
    *ctx.srv.config.user_lines.lock() = ctx
        .srv
        .acl
        .list()
        .iter()
        .map(|l| {
            String::from_utf8_lossy(&l[5..])
                .split(' ')
                .map(str::to_string)
                .collect()
        })
        .collect();
    match config::rewrite(&ctx.srv.config) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.error(&format!("ERR {e}")),
    }
}

fn config_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
}

fn time(ctx: &mut Ctx, _argv: &[&[u8]]) {
    // Inside a script the time stands still (Redis's cached time).
    let us = crate::scripting::frozen_time_us().unwrap_or_else(now_us);
    let mut r = ctx.r();
    r.array(2);
    r.bulk_int((us / 1_000_000) as i64);
    r.bulk_int((us % 1_000_000) as i64);
}

fn lastsave(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let t = ctx.srv.lastsave.load(Ordering::Relaxed);
    ctx.r().int(t as i64);
}

/// A digest of one key and value, independent of encoding (DEBUG DIGEST).
fn key_digest(key: &[u8], value: &Value, expire: Option<u64>) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    h.update(key);
    value.digest(&mut h);
    if let Some(t) = expire {
        h.update(b"!!expire!!");
        h.update(&t.to_le_bytes());
    }
    h.digest().bytes()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// XOR of per-key digests over every database: order-independent, and all
/// zeros for an empty server, like Redis's DEBUG DIGEST.
pub fn dataset_digest(ctx: &mut Ctx) -> [u8; 20] {
    let mut acc = [0u8; 20];
    let now = ctx.now_ms;
    for db in 0..ctx.srv.keyspace.db_count() {
        ctx.locks.for_each_shard_to_look(db, |_, sh| {
            for e in sh.iter().filter(|e| !e.is_expired(now)) {
                let mut d = key_digest(e.key(), &e.value(), e.expire_at());
                d[0] ^= db as u8;
                for (a, b) in acc.iter_mut().zip(d.iter()) {
                    *a ^= b;
                }
            }
            true
        });
    }
    acc
}

fn debug_allowed(ctx: &Ctx) -> bool {
    protected_allowed(ctx, "enable-debug-command")
}

/// `enable-debug-command` / `enable-module-command`: yes, no or local.
fn protected_allowed(ctx: &Ctx, param: &str) -> bool {
    match ctx.srv.config.get_str(param).as_str() {
        "yes" => true,
        "local" => {
            ctx.client.handle.addr.starts_with("127.")
                || ctx.client.handle.addr.starts_with("[::1]")
        }
        _ => false,
    }
}

fn module_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
}

/// MODULE LIST: Lodestone loads no modules.
fn module_list(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.r().array(0);
}

const MODULE_NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// MODULE LOAD / LOADEX: Redis modules are C shared objects written
/// against Redis's internals; Lodestone cannot host them, and says so the
/// way Redis reports a module that fails to load.
fn module_load(ctx: &mut Ctx, argv: &[&[u8]]) {
    if !protected_allowed(ctx, "enable-module-command") {
        return ctx.error(MODULE_NOT_ALLOWED);
    }
    crate::persist::log(&format!(
        "Module {} failed to load: modules are not supported by Lodestone",
        String::from_utf8_lossy(argv[2])
    ));
    ctx.error("ERR Error loading the extension. Please check the server logs.");
}

fn module_unload(ctx: &mut Ctx, _argv: &[&[u8]]) {
    if !protected_allowed(ctx, "enable-module-command") {
        return ctx.error(MODULE_NOT_ALLOWED);
    }
    ctx.error("ERR Error unloading module: no such module with that name");
}

/// BGREWRITEAOF: starts an AOF rewrite (see `crate::aof::rewrite_now`).
fn bgrewriteaof(ctx: &mut Ctx, _argv: &[&[u8]]) {
    match crate::aof::rewrite_now(ctx.srv, false) {
        Ok(false) => ctx
            .r()
            .simple("Background append only file rewriting started"),
        Ok(true) => ctx
            .r()
            .simple("Background append only file rewriting scheduled"),
        Err(e) if e == crate::aof::REWRITE_IN_PROGRESS => ctx.error(&e),
        Err(e) => ctx.error(&format!("ERR {e}")),
    }
}

/// DEBUG POPULATE count [prefix] [size]: adds string keys `prefix:N`
/// (default `key:N`) with values `value:N`, cut or zero-padded to `size`
/// bytes when given, skipping keys that exist; nothing is propagated.
fn debug_populate(ctx: &mut Ctx, argv: &[&[u8]]) {
    const POSITIVE: &str = "ERR value is out of range, must be positive";
    let positive = |a: &[u8]| strutil::parse_i64(a).filter(|n| *n >= 0);
    let Some(count) = positive(argv[2]) else {
        return ctx.error(POSITIVE);
    };
    // Redis first sizes its table for `count` keys; a size no machine has fails.
    if count > 1 << 32 {
        return ctx.error("ERR OOM in dictTryExpand");
    }
    let size = match argv.get(4) {
        Some(a) => match positive(a) {
            Some(n) => n as usize,
            None => return ctx.error(POSITIVE),
        },
        None => 0,
    };
    if size as u64 > ctx.srv.config.num(HOT.proto_max_bulk_len) as u64 {
        return ctx.error("ERR value is out of range, must be at most proto-max-bulk-len");
    }
    let prefix = argv.get(3).copied().unwrap_or(b"key");
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let lru = crate::keyspace::lru::new_lru(crate::keyspace::lru::coarse_now_ms());
    let (mut key, mut val) = (Vec::new(), Vec::new());
    for j in 0..count as u64 {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        // Redis formats the name into a 128-byte buffer.
        key.truncate(127);
        let added = ctx
            .locks
            .with_shard_mut(db, crate::keyspace::shard_of(&key), |sh| {
                if sh.get_mut(&key, now).is_some() {
                    return false;
                }
                val.clear();
                val.extend_from_slice(b"value:");
                val.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
                if size > 0 {
                    val.resize(size, 0);
                }
                let v = Value::Str(Str::Bytes {
                    data: std::mem::take(&mut val),
                    raw: false,
                });
                sh.insert_entry(Entry::new_full(&key, v, None, lru));
                true
            });
        if added {
            ctx.signal_modified(db, &key);
        }
    }
    ctx.ok();
}

fn debug(ctx: &mut Ctx, argv: &[&[u8]]) {
    if !debug_allowed(ctx) {
        return ctx.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
    }
    let sub = argv[1].to_ascii_lowercase();
    let now = ctx.now_ms;
    let db = ctx.client.db;
    match sub.as_slice() {
        b"help" => super::introspect::help_reply(
            ctx,
            "DEBUG",
            &[
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "OBJECT <key>",
                "    Show low level info about the internal encoding of <key>.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "RELOAD [NOSAVE]",
                "    Save the RDB on disk and reload it back to memory.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "STALLS [RESET|CPU <0|1>]",
                "    Show (or reset) the stall histograms of the event loop, cron and table growth.",
            ],
        ),
        b"populate" if (3..=5).contains(&argv.len()) => debug_populate(ctx, argv),
        b"sleep" if argv.len() == 3 => {
            let secs = strutil::parse_f64(argv[2]).unwrap_or(0.0).max(0.0);
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            ctx.ok();
        }
        // Our own: the stall histograms of `server::latency` (event loop
        // passes, cron steps, table growth ...), their reset, and whether
        // they also measure thread CPU time.
        b"stalls" => {
            use crate::server::latency;
            match argv.get(2).map(|a| a.to_ascii_lowercase()).as_deref() {
                None => {
                    let text = latency::stalls_report();
                    ctx.r().verbatim(text.as_bytes(), "txt");
                }
                Some(b"reset") => {
                    latency::reset_stalls();
                    ctx.ok();
                }
                Some(b"cpu") if argv.len() == 4 => {
                    latency::set_cpu_clock(argv[3] != b"0");
                    ctx.ok();
                }
                _ => ctx.error(err::SYNTAX),
            }
        }
        b"log" if argv.len() == 3 => {
            eprintln!("DEBUG LOG: {}", String::from_utf8_lossy(argv[2]));
            ctx.ok();
        }
        b"set-disable-deny-scripts" if argv.len() == 3 => {
            // Lets scripts run commands flagged noscript (a test hook).
            ctx.srv.scripting.disable_deny_scripts.store(
                strutil::parse_i64(argv[2]).unwrap_or(0) != 0,
                Ordering::Relaxed,
            );
            ctx.ok();
        }
        b"set-active-expire" if argv.len() == 3 => {
            crate::keyspace::expire::ACTIVE_EXPIRE_ENABLED
                .store(argv[2] != b"0", Ordering::Relaxed);
            ctx.ok();
        }
        b"object" if argv.len() == 3 => {
            let mut locks = crate::keyspace::Locks::new(&ctx.srv.keyspace);
            let mut ids = vec![(db as u32, crate::keyspace::shard_of(argv[2]) as u32)];
            let outer = ctx.locks.holds_any();
            if !outer {
                locks.acquire(&mut ids);
            }
            let sh = if outer {
                ctx.locks.shard(db, argv[2])
            } else {
                locks.shard(db, argv[2])
            };
            let opts = crate::persist::save_opts(ctx.srv);
            // Redis looks the key up without expiring it.
            let _ = now;
            let line = sh.peek(argv[2]).map(|e| {
                let mut ser = Vec::new();
                crate::persist::rdb::put_value(&mut ser, &e.value(), &opts);
                let (enc, len) = (e.encoding(), ser.len());
                format!(
                    "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:0",
                    enc,
                    len,
                    e.lru()
                )
            });
            drop(locks);
            match line {
                Some(l) => ctx.r().simple(&l),
                None => ctx.error(err::NO_SUCH_KEY),
            }
        }
        b"loadaof" => match crate::aof::debug_loadaof(ctx.srv) {
            Ok(()) => ctx.ok(),
            Err(e) => {
                eprintln!("DEBUG LOADAOF: {e}");
                ctx.error("ERR Error trying to load the AOF files, check server logs.")
            }
        },
        b"digest" if argv.len() == 2 => {
            let d = dataset_digest(ctx);
            ctx.r().simple(&hex(&d));
        }
        b"digest-value" => {
            let mut out = Vec::new();
            for key in &argv[2..] {
                let mut locks = crate::keyspace::Locks::new(&ctx.srv.keyspace);
                let outer = ctx.locks.holds_any();
                if !outer {
                    locks.acquire(&mut [(db as u32, crate::keyspace::shard_of(key) as u32)]);
                }
                let sh = if outer {
                    ctx.locks.shard(db, key)
                } else {
                    locks.shard(db, key)
                };
                let d = sh
                    .get_mut(key, now)
                    .map(|e| key_digest(b"", &e.value(), None))
                    .unwrap_or([0; 20]);
                out.push(hex(&d));
            }
            let mut r = ctx.r();
            r.array(out.len());
            for d in out {
                r.simple(&d);
            }
        }
        b"protocol" if argv.len() == 3 => debug_protocol(ctx, &argv[2].to_ascii_lowercase()),
        b"stringmatch-len" => ctx.ok(),
        b"quicklist-packed-threshold"
        | b"listpack"
        | b"change-repl-id"
        | b"replybuffer"
        | b"pause-cron" => ctx.ok(),
        b"jmap" => ctx.ok(),
        b"reload" => super::persistence::debug_reload(ctx, argv),
        b"set-skip-checksum-validation" if argv.len() == 3 => {
            crate::persist::SKIP_CHECKSUM.store(argv[2] != b"0", Ordering::Relaxed);
            ctx.ok();
        }
        _ => ctx.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(argv[1])
        )),
    }
}

fn debug_protocol(ctx: &mut Ctx, t: &[u8]) {
    let mut r = ctx.r();
    match t {
        b"string" => r.bulk(b"Hello World"),
        b"integer" => r.int(12345),
        b"double" => r.double_text(b"3.141"),
        b"bignum" => r.big_number(b"1234567999999999999999999999999999999"),
        b"null" => r.null(),
        b"array" => {
            r.array(3);
            for i in 0..3 {
                r.int(i);
            }
        }
        b"set" => {
            r.set(3);
            for i in 0..3 {
                r.int(i);
            }
        }
        b"map" => {
            r.map(3);
            for i in 0..3 {
                r.int(i);
                r.boolean(i == 1);
            }
        }
        b"attrib" => {
            if r.is_resp3() {
                r.raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n");
            }
            r.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !r.is_resp3() {
                return r.error("ERR RESP2 is not supported by this command");
            }
            r.push(2);
            r.bulk(b"server-cpu-usage");
            r.int(42);
            r.bulk(b"Some real reply following the push reply");
        }
        b"true" => r.boolean(true),
        b"false" => r.boolean(false),
        b"verbatim" => r.verbatim(b"This is a verbatim\nstring", "txt"),
        _ => r.error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

fn shutdown(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (mut nosave, mut save, mut force) = (false, false, false);
    for a in &argv[1..] {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" => {}
            b"force" => force = true,
            b"abort" => return ctx.error("ERR No shutdown in progress."),
            _ => return ctx.error(err::SYNTAX),
        }
    }
    if nosave && save {
        return ctx.error(err::SYNTAX);
    }
    // Like Redis: save when asked, or when save points exist (unless NOSAVE).
    if save || (!nosave && !crate::persist::save_points(ctx.srv).is_empty()) {
        crate::persist::log(
            "User requested shutdown... Saving the final RDB snapshot before exiting.",
        );
        if super::persistence::save_now(ctx).is_err() && !force {
            return ctx.error("ERR Errors trying to SHUTDOWN. Check logs.");
        }
    }
    ctx.srv.shutdown.store(true, Ordering::SeqCst);
    ctx.srv.broadcast(|| crate::server::WorkerMsg::Unpause);
    ctx.client.close_after_reply = true;
}

fn slowlog_get(ctx: &mut Ctx, argv: &[&[u8]]) {
    let count = match argv.get(2) {
        None => 10,
        Some(a) => match parse_i64(a) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => n as usize,
            _ => return ctx.error("ERR count should be greater than or equal to -1"),
        },
    };
    let log = ctx.srv.slowlog.lock();
    let entries: Vec<_> = log.entries.iter().take(count).collect();
    let mut r = resp::Reply::new(ctx.out, ctx.client.proto);
    r.array(entries.len());
    for e in entries {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time as i64);
        r.int(e.duration_us as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk(e.peer.as_bytes());
        r.bulk(e.name.as_bytes());
    }
}

fn slowlog_len(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let n = ctx.srv.slowlog.lock().entries.len();
    ctx.r().int(n as i64);
}

fn slowlog_reset(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.srv.slowlog.lock().entries.clear();
    ctx.ok();
}

fn slowlog_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

fn memory_usage(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() == 5 {
        if !argv[3].eq_ignore_ascii_case(b"samples") || parse_i64(argv[4]).is_none() {
            return ctx.error(err::SYNTAX);
        }
    } else if argv.len() != 3 {
        return ctx.error(err::SYNTAX);
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[2]);
    let size = sh.get_mut(argv[2], now).map(|e| e.memory_usage());
    match size {
        Some(n) => ctx.r().int(n as i64),
        None => ctx.r().null(),
    }
}

fn memory_doctor(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.r().verbatim(b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.", "txt");
}

fn memory_purge(ctx: &mut Ctx, _argv: &[&[u8]]) {
    crate::server::memory::purge();
    ctx.ok();
}

/// MEMORY STATS: Redis's map of memory figures (a flat array in RESP2).
fn memory_stats(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let m = mem_info(ctx.srv);
    let mut r = ctx.r();
    r.map(27 + m.tables.len());
    let int = |r: &mut resp::Reply, k: &str, v: u64| {
        r.bulk(k.as_bytes());
        r.int(v as i64);
    };
    let dbl = |r: &mut resp::Reply, k: &str, v: f64| {
        r.bulk(k.as_bytes());
        r.double_text(strutil::format_double(v).as_bytes());
    };
    int(&mut r, "peak.allocated", m.peak);
    int(&mut r, "total.allocated", m.used);
    int(&mut r, "startup.allocated", m.startup);
    int(&mut r, "replication.backlog", 0);
    int(&mut r, "clients.slaves", 0);
    int(&mut r, "clients.normal", m.clients_normal);
    int(&mut r, "cluster.links", 0);
    int(&mut r, "aof.buffer", 0);
    int(&mut r, "lua.caches", 0);
    int(&mut r, "functions.caches", 0);
    for (db, bytes, _) in &m.tables {
        r.bulk(format!("db.{db}").as_bytes());
        r.map(2);
        int(&mut r, "overhead.hashtable.main", *bytes);
        int(&mut r, "overhead.hashtable.expires", 0);
    }
    int(&mut r, "overhead.total", m.overhead);
    int(&mut r, "dataset.bytes", m.dataset);
    dbl(
        &mut r,
        "dataset.percentage",
        ratio(m.dataset, m.used.saturating_sub(m.startup)) * 100.0,
    );
    dbl(&mut r, "peak.percentage", ratio(m.used, m.peak) * 100.0);
    int(&mut r, "allocator.allocated", m.allocated);
    int(&mut r, "allocator.active", m.active);
    int(&mut r, "allocator.resident", m.resident);
    dbl(
        &mut r,
        "allocator-fragmentation.ratio",
        ratio(m.active, m.allocated),
    );
    int(
        &mut r,
        "allocator-fragmentation.bytes",
        m.active.saturating_sub(m.allocated),
    );
    dbl(&mut r, "allocator.rss-ratio", ratio(m.resident, m.active));
    int(
        &mut r,
        "allocator.rss-bytes",
        m.resident.saturating_sub(m.active),
    );
    dbl(&mut r, "rss-overhead.ratio", ratio(m.rss, m.resident));
    int(
        &mut r,
        "rss-overhead.bytes",
        m.rss.saturating_sub(m.resident),
    );
    dbl(&mut r, "fragmentation", ratio(m.rss, m.used));
    int(&mut r, "fragmentation.bytes", m.rss.saturating_sub(m.used));
    int(&mut r, "keys.count", m.keys);
    int(
        &mut r,
        "keys.bytes-per-key",
        m.dataset.checked_div(m.keys).unwrap_or(0),
    );
}

/// MEMORY MALLOC-STATS: jemalloc's own statistics report.
fn memory_malloc_stats(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let mut text = Vec::new();
    let _ = tikv_jemalloc_ctl::stats_print::stats_print(&mut text, Default::default());
    ctx.r().verbatim(&text, "txt");
}

fn memory_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}

fn lolwut(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let text = format!(
        "Lodestone ver. {} (Redis ver. {})\n",
        env!("CARGO_PKG_VERSION"),
        crate::REDIS_VERSION
    );
    ctx.r().verbatim(text.as_bytes(), "txt");
}

fn monitor(ctx: &mut Ctx, _argv: &[&[u8]]) {
    if ctx.client.multi.is_some() || ctx.in_exec {
        return ctx.error("ERR MONITOR isn't allowed inside a transaction");
    }
    let mut m = ctx.srv.monitors.lock();
    let id = ctx.client.id();
    if !m.iter().any(|(c, _)| *c == id) {
        m.push((id, ctx.client.handle.worker));
        ctx.srv.monitor_count.store(m.len(), Ordering::SeqCst);
    }
    drop(m);
    ctx.ok();
}

/// Quotes an argument as Redis's `sdscatrepr` does.
fn repr(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for &c in a {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Which arguments MONITOR and SLOWLOG must not show (passwords, ACL
/// rules).
pub fn redacted(argv: &[&[u8]], i: usize) -> bool {
    let name = argv[0].to_ascii_lowercase();
    match name.as_slice() {
        b"auth" => i >= 1,
        b"acl" => i >= 2 && argv[1].eq_ignore_ascii_case(b"setuser"),
        b"hello" => argv[..i]
            .iter()
            .rposition(|a| a.eq_ignore_ascii_case(b"auth"))
            .is_some_and(|p| i - p <= 2),
        b"migrate" => argv[..i]
            .iter()
            .rposition(|a| a.eq_ignore_ascii_case(b"auth") || a.eq_ignore_ascii_case(b"auth2"))
            .is_some_and(|p| {
                let n = if argv[p].eq_ignore_ascii_case(b"auth") {
                    1
                } else {
                    2
                };
                i - p <= n
            }),
        _ => false,
    }
}

/// Sends a command to every MONITOR client (if there is one), in Redis's
/// format: `+<unix time with microseconds> [<db> <client address>] "arg" ...`,
/// with `lua` for the address of commands a script runs. The dispatcher
/// calls it after a command ran; EVAL, EVALSHA and FCALL (flagged
/// skip_monitor) call it before they run, so their commands follow them.
#[inline]
pub fn feed_monitors(ctx: &mut Ctx, argv: &[&[u8]]) {
    if ctx.srv.monitor_count.load(Ordering::Relaxed) > 0 && !ctx.no_monitor {
        send_to_monitors(ctx, argv);
    }
}

#[cold]
fn send_to_monitors(ctx: &mut Ctx, argv: &[&[u8]]) {
    let us = now_us();
    let who: &dyn std::fmt::Display = if crate::scripting::in_script() {
        &"lua"
    } else {
        &ctx.client.handle.addr
    };
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        us / 1_000_000,
        us % 1_000_000,
        ctx.client.db,
        who
    )
    .into_bytes();
    for (i, a) in argv.iter().enumerate() {
        line.push(b' ');
        if redacted(argv, i) {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            repr(&mut line, a);
        }
    }
    line.extend_from_slice(b"\r\n");
    let line: std::sync::Arc<[u8]> = line.into();
    let me = ctx.client.id();
    for &(client, worker) in ctx.srv.monitors.lock().iter() {
        if client != me {
            ctx.srv.send_to_worker(
                worker,
                crate::server::WorkerMsg::Monitor(client, line.clone()),
            );
        }
    }
}
