//! `lodestone [config-file] [--option value ...]`: the server binary.
//!
//! The command line has redis-server's form: an optional config file (or
//! `-` for standard input), then `--name value...` options, which are
//! appended to the file's text as config lines.

use lodestone::config::{self, Config};
use lodestone::server::{net, Server};
use std::sync::Arc;

#[global_allocator]
static ALLOC: lodestone::alloc::Jemalloc = lodestone::alloc::Jemalloc;

fn usage() -> ! {
    eprintln!(
        "Usage: ./lodestone [/path/to/lodestone.conf] [options] [-]\n       ./lodestone - (read config from stdin)\n       ./lodestone -v or --version\n       ./lodestone -h or --help\n\nExamples:\n       ./lodestone (run the server with default config)\n       ./lodestone /etc/redis/6379.conf\n       ./lodestone --port 7777\n       ./lodestone /etc/mylodestone.conf --loglevel verbose -"
    );
    std::process::exit(1);
}

/// Turns the argument list into config text, as redis-server does.
fn config_text(args: &[String]) -> (Option<String>, String) {
    let mut text = String::new();
    let mut file = None;
    let mut i = 0;
    if let Some(first) = args.first() {
        if !first.starts_with("--") && first != "-" {
            file = Some(first.clone());
            i = 1;
        }
    }
    if let Some(f) = &file {
        match std::fs::read_to_string(f) {
            Ok(t) => text.push_str(&t),
            Err(e) => {
                eprintln!("Fatal error, can't open config file '{f}': {e}");
                std::process::exit(1);
            }
        }
        text.push('\n');
    }
    let mut line = String::new();
    while i < args.len() {
        let a = &args[i];
        if a == "-" {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s);
            text.push_str(&s);
            text.push('\n');
        } else if let Some(name) = a.strip_prefix("--") {
            if !line.is_empty() {
                text.push_str(&line);
                text.push('\n');
            }
            line = name.to_string();
        } else {
            // Values are quoted so that empty strings and spaces survive.
            line.push_str(" \"");
            line.push_str(&a.replace('\\', "\\\\").replace('"', "\\\""));
            line.push('"');
        }
        i += 1;
    }
    if !line.is_empty() {
        text.push_str(&line);
        text.push('\n');
    }
    (file, text)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "-v" || a == "--version") {
        println!(
            "Lodestone server v={} (Redis {} compatible) malloc=jemalloc bits=64",
            env!("CARGO_PKG_VERSION"),
            lodestone::REDIS_VERSION
        );
        return;
    }
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        usage();
    }
    let (file, text) = config_text(&args);
    let cfg = Config::new();
    if let Err((n, line, why)) = config::load_text(&cfg, &text) {
        eprintln!(
            "\n*** FATAL CONFIG FILE ERROR (Redis {}) ***",
            lodestone::REDIS_VERSION
        );
        eprintln!("Reading the configuration file, at line {n}");
        eprintln!(">>> '{line}'");
        eprintln!("{why}");
        std::process::exit(1);
    }
    let abs_file = file.as_ref().map(|f| {
        std::fs::canonicalize(f)
            .map(|p| p.display().to_string())
            .unwrap_or(f.clone())
    });
    *cfg.file.write() = abs_file.as_ref().map(std::path::PathBuf::from);
    let dir = cfg.get_str("dir");
    if !dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&dir) {
            eprintln!("Can't chdir to '{dir}': {e}");
            std::process::exit(1);
        }
        if let Ok(d) = std::env::current_dir() {
            let _ = cfg.set_startup("dir", &d.display().to_string());
        }
    }
    if cfg.get_bool("disable-thp") {
        // Like Redis: transparent huge pages cause latency spikes (and
        // copy-on-write amplification) for a server of many small objects.
        // SAFETY: prctl with PR_SET_THP_DISABLE only sets a process flag.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // The main thread becomes worker 0; its allocations so far count too.
    lodestone::server::memory::register_thread();
    let srv = Arc::new(Server::new(cfg, exe, abs_file));
    srv.apply_config();
    if let Err(e) = srv.acl.load_at_startup(&srv) {
        eprintln!("# {e}");
        std::process::exit(1);
    }
    // Function libraries travel in RDB files (and AOF bases) with the data.
    lodestone::persist::set_function_hook(Arc::new(lodestone::scripting::functions::RdbFunctions));
    let startup = lodestone::server::memory::used();
    lodestone::server::memory::STARTUP.store(startup, std::sync::atomic::Ordering::Relaxed);
    lodestone::server::signals::install();
    // Like Redis, the listener opens first and clients get `-LOADING`
    // until the dataset is in memory: the AOF when it is on, else the RDB
    // file (the AOF's setup runs either way). A failed load is fatal.
    srv.persist
        .startup_loading
        .store(true, std::sync::atomic::Ordering::SeqCst);
    srv.persist.loading_start.store(
        lodestone::server::now_ms() / 1000,
        std::sync::atomic::Ordering::SeqCst,
    );
    let loader_srv = srv.clone();
    let load = Box::new(move || {
        let srv = loader_srv;
        lodestone::server::memory::register_thread();
        let loaded = lodestone::aof::load_at_startup(&srv).and_then(|()| {
            if srv.config.get_bool("appendonly") {
                return Ok(());
            }
            lodestone::persist::load_at_startup(&srv)
                .map_err(|e| format!("Fatal error loading the DB: {e}. Exiting."))
        });
        if let Err(e) = loaded {
            eprintln!("# {e}");
            std::process::exit(1);
        }
        srv.persist
            .startup_loading
            .store(false, std::sync::atomic::Ordering::SeqCst);
        // A configured `replicaof` links up once the local dataset is in.
        lodestone::repl::start_from_config(&srv);
        lodestone::persist::log("Ready to accept connections tcp");
    });
    if let Err(e) = net::serve(srv, Some(load)) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
