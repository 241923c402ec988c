//! EVAL, EVALSHA, SCRIPT, FCALL and FUNCTION (Redis's `eval.c` and
//! `functions.c` commands). The Lua runtime lives in `crate::scripting`.
//!
//! Scripts lock their own shards (their lock set is `LockSet::All`, so the
//! dispatcher takes none outside a transaction and EXEC takes every shard
//! when a transaction contains a script); see `scripting::execute`.

use super::{err, Ctx, Handler, LockSet, Registry};
use crate::scripting::{self, functions, sflags, Script, Target};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const TABLE: &str = "\
eval|scripting|-3|2.6.0|noscript,skip_monitor,may_replicate,no_mandatory_keys,stale|scripting|-|Executes a server-side Lua script.
evalsha|scripting|-3|2.6.0|noscript,skip_monitor,may_replicate,no_mandatory_keys,stale|scripting|-|Executes a server-side Lua script by SHA1 digest.
eval_ro|scripting|-3|7.0.0|noscript,skip_monitor,no_mandatory_keys,stale,readonly|scripting|-|Executes a read-only server-side Lua script.
evalsha_ro|scripting|-3|7.0.0|noscript,skip_monitor,no_mandatory_keys,stale,readonly|scripting|-|Executes a read-only server-side Lua script by SHA1 digest.
fcall|scripting|-3|7.0.0|noscript,skip_monitor,may_replicate,no_mandatory_keys,stale|scripting|-|Invokes a function.
fcall_ro|scripting|-3|7.0.0|noscript,skip_monitor,no_mandatory_keys,stale,readonly|scripting|-|Invokes a read-only function.
script|scripting|-2|2.6.0|-|-|-|A container for Lua scripts management commands.
script|debug|scripting|3|3.2.0|noscript|scripting|-|Sets the debug mode of server-side Lua scripts.
script|exists|scripting|-3|2.6.0|noscript|scripting|-|Determines whether server-side Lua scripts exist in the script cache.
script|flush|scripting|-2|2.6.0|noscript|scripting|-|Removes all server-side Lua scripts from the script cache.
script|help|scripting|2|5.0.0|loading,stale|scripting|-|Returns helpful text about the different subcommands.
script|kill|scripting|2|2.6.0|noscript,allow_busy|scripting|-|Terminates a server-side Lua script during execution.
script|load|scripting|3|2.6.0|noscript,stale|scripting|-|Loads a server-side Lua script to the script cache.
function|scripting|-2|7.0.0|-|-|-|A container for function commands.
function|delete|scripting|3|7.0.0|noscript,write|scripting|-|Deletes a library and its functions.
function|dump|scripting|2|7.0.0|noscript|scripting|-|Dumps all libraries into a serialized binary payload.
function|flush|scripting|-2|7.0.0|noscript,write|scripting|-|Deletes all libraries and functions.
function|help|scripting|2|7.0.0|loading,stale|scripting|-|Returns helpful text about the different subcommands.
function|kill|scripting|2|7.0.0|noscript,allow_busy|scripting|-|Terminates a function during execution.
function|list|scripting|-2|7.0.0|noscript|scripting|-|Returns information about all libraries.
function|load|scripting|-3|7.0.0|noscript,write,denyoom|scripting|-|Creates a library.
function|restore|scripting|-3|7.0.0|noscript,write,denyoom|scripting|-|Restores all libraries from a payload.
function|stats|scripting|2|7.0.0|noscript,allow_busy|scripting|-|Returns information about a function during execution.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("eval", eval as Handler),
        ("evalsha", evalsha),
        ("eval_ro", eval),
        ("evalsha_ro", evalsha),
        ("fcall", fcall),
        ("fcall_ro", fcall),
        ("script|debug", script_debug),
        ("script|exists", script_exists),
        ("script|flush", script_flush),
        ("script|help", script_help),
        ("script|kill", script_kill),
        ("script|load", script_load),
        ("function|delete", function_delete),
        ("function|dump", function_dump),
        ("function|flush", function_flush),
        ("function|help", function_help),
        ("function|kill", function_kill),
        ("function|list", function_list),
        ("function|load", function_load),
        ("function|restore", function_restore),
        ("function|stats", function_stats),
    ]);
    for name in [
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
    ] {
        r.keys.push((name, script_keys));
        r.locksets.push((name, |_, _, _| LockSet::All));
    }
}

/// KEYS of EVAL/FCALL: `numkeys` at argv[2], the keys after it.
fn script_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let n = strutil::parse_i64(argv.get(2)?)?;
    if n < 0 || n as usize > argv.len().saturating_sub(3) {
        return None;
    }
    Some((3..3 + n as usize).collect())
}

/// Splits EVAL/FCALL arguments into (keys, args), or writes the error.
fn split_keys<'a>(ctx: &mut Ctx, argv: &'a [&'a [u8]]) -> Option<(&'a [&'a [u8]], &'a [&'a [u8]])> {
    let Some(n) = strutil::parse_i64(argv[2]) else {
        ctx.error(err::NOT_INT);
        return None;
    };
    if n > (argv.len() - 3) as i64 {
        ctx.error("ERR Number of keys can't be greater than number of args");
        return None;
    }
    if n < 0 {
        ctx.error("ERR Number of keys can't be negative");
        return None;
    }
    let n = n as usize;
    Some((&argv[3..3 + n], &argv[3 + n..]))
}

/// The flags a script command runs with, as Redis's `getCommandFlags`:
/// a script that declared flags in its shebang (or a function) replaces
/// the command's write, denyoom, stale and may-replicate flags with what
/// it declared; an EVAL script without a shebang, or one not found, keeps
/// the command's own. Only for decisions taken before the command runs
/// (CLIENT PAUSE), so it may look the script up again.
pub fn script_command_flags(
    srv: &crate::server::Server,
    cmd: &super::Command,
    argv: &[&[u8]],
) -> u32 {
    let cmd_flags = cmd.flags;
    use super::flags::{DENYOOM, MAY_REPLICATE, STALE, WRITE};
    use scripting::sflags::{ALLOW_OOM, ALLOW_STALE, EVAL_COMPAT, NO_WRITES};
    let Some(name) = argv.get(1) else {
        return cmd_flags;
    };
    let declared = match cmd.name.as_str() {
        "eval" | "eval_ro" => scripting::parse_shebang(name).ok().map(|(f, _)| f),
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(name).to_ascii_lowercase();
            srv.scripting.scripts.read().get(&sha).map(|s| s.flags)
        }
        "fcall" | "fcall_ro" => srv
            .scripting
            .libs
            .read()
            .function(&String::from_utf8_lossy(name))
            .map(|f| f.flags),
        _ => None,
    };
    let Some(sf) = declared.filter(|f| f & EVAL_COMPAT == 0) else {
        return cmd_flags;
    };
    let mut f = cmd_flags & !(STALE | DENYOOM | WRITE | MAY_REPLICATE);
    if sf & (ALLOW_OOM | NO_WRITES) == 0 {
        f |= DENYOOM;
    }
    if sf & NO_WRITES == 0 {
        f |= WRITE;
    }
    if sf & ALLOW_STALE != 0 {
        f |= STALE;
    }
    f
}

fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Caches a script after checking its shebang and compiling it on this
/// thread. Returns the SHA and script, or writes the error.
fn cache_script(ctx: &mut Ctx, body: &[u8]) -> Option<(String, Arc<Script>)> {
    let sha = sha1_hex(body);
    if let Some(s) = ctx.srv.scripting.scripts.read().get(&sha) {
        return Some((sha, s.clone()));
    }
    let (flags, shebang) = match scripting::parse_shebang(body) {
        Ok(x) => x,
        Err(e) => {
            ctx.error(&e);
            return None;
        }
    };
    if let Err(e) = scripting::compile_eval(ctx.srv, &sha, body, shebang) {
        ctx.error(&e);
        return None;
    }
    let s = Arc::new(Script {
        body: body.to_vec(),
        flags,
    });
    let st = &ctx.srv.scripting;
    let mut m = st.scripts.write();
    if m.insert(sha.clone(), s.clone()).is_none() {
        st.scripts_mem.fetch_add(body.len() + 40, Ordering::Relaxed);
    }
    Some((sha, s))
}

fn is_ro(argv: &[&[u8]]) -> bool {
    argv[0].len() > 3 && argv[0][argv[0].len() - 3..].eq_ignore_ascii_case(b"_ro")
}

fn eval(ctx: &mut Ctx, argv: &[&[u8]]) {
    super::admin::feed_monitors(ctx, argv);
    let Some((keys, args)) = split_keys(ctx, argv) else {
        return;
    };
    let Some((sha, script)) = cache_script(ctx, argv[1]) else {
        return;
    };
    let flags = script.flags;
    scripting::execute(
        ctx,
        Target::Eval { sha: &sha, script },
        keys,
        args,
        flags,
        is_ro(argv),
        argv,
    );
}

fn evalsha(ctx: &mut Ctx, argv: &[&[u8]]) {
    super::admin::feed_monitors(ctx, argv);
    let Some((keys, args)) = split_keys(ctx, argv) else {
        return;
    };
    // SHAs are looked up in lowercase, without allocating.
    let mut buf = [0u8; 40];
    let sha = match argv[1].len() {
        40 => {
            buf.copy_from_slice(argv[1]);
            buf.make_ascii_lowercase();
            std::str::from_utf8(&buf).ok()
        }
        _ => None,
    };
    let found = sha.and_then(|sha| ctx.srv.scripting.scripts.read().get(sha).cloned());
    let (Some(script), Some(sha)) = (found, sha) else {
        return ctx.error("NOSCRIPT No matching script. Please use EVAL.");
    };
    let flags = script.flags;
    scripting::execute(
        ctx,
        Target::Eval { sha, script },
        keys,
        args,
        flags,
        is_ro(argv),
        argv,
    );
}

fn fcall(ctx: &mut Ctx, argv: &[&[u8]]) {
    super::admin::feed_monitors(ctx, argv);
    let name = String::from_utf8_lossy(argv[1]).to_string();
    let Some(info) = ctx.srv.scripting.libs.read().function(&name) else {
        return ctx.error("ERR Function not found");
    };
    if strutil::parse_i64(argv[2]).is_none() {
        return ctx.error("ERR Bad number of keys provided");
    }
    let Some((keys, args)) = split_keys(ctx, argv) else {
        return;
    };
    scripting::execute(
        ctx,
        Target::Function { name: &name },
        keys,
        args,
        info.flags,
        is_ro(argv),
        argv,
    );
}

fn script_load(ctx: &mut Ctx, argv: &[&[u8]]) {
    if let Some((sha, _)) = cache_script(ctx, argv[2]) {
        ctx.r().bulk(sha.as_bytes());
    }
}

fn script_exists(ctx: &mut Ctx, argv: &[&[u8]]) {
    let m = ctx.srv.scripting.scripts.read();
    let found: Vec<bool> = argv[2..]
        .iter()
        .map(|s| m.contains_key(&String::from_utf8_lossy(s).to_ascii_lowercase()))
        .collect();
    drop(m);
    let mut r = ctx.r();
    r.array(found.len());
    for f in found {
        r.int(f as i64);
    }
}

fn flush_option(ctx: &mut Ctx, argv: &[&[u8]], what: &str) -> bool {
    match argv.len() {
        2 => true,
        3 if argv[2].eq_ignore_ascii_case(b"async") || argv[2].eq_ignore_ascii_case(b"sync") => {
            true
        }
        3 => {
            ctx.error(&format!("ERR {what} FLUSH only supports SYNC|ASYNC option"));
            false
        }
        _ => {
            ctx.error(err::SYNTAX);
            false
        }
    }
}

fn script_flush(ctx: &mut Ctx, argv: &[&[u8]]) {
    if !flush_option(ctx, argv, "SCRIPT") {
        return;
    }
    let st = &ctx.srv.scripting;
    st.scripts.write().clear();
    st.scripts_mem.store(0, Ordering::Relaxed);
    st.needs_all.write().clear();
    st.scripts_gen.fetch_add(1, Ordering::SeqCst);
    ctx.ok();
}

fn script_kill(ctx: &mut Ctx, _argv: &[&[u8]]) {
    match ctx.srv.scripting.kill(true) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.error(e),
    }
}

fn function_kill(ctx: &mut Ctx, _argv: &[&[u8]]) {
    match ctx.srv.scripting.kill(false) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.error(e),
    }
}

fn script_debug(ctx: &mut Ctx, argv: &[&[u8]]) {
    let a = argv[2];
    if a.eq_ignore_ascii_case(b"no") {
        ctx.ok()
    } else if a.eq_ignore_ascii_case(b"yes") || a.eq_ignore_ascii_case(b"sync") {
        ctx.error("ERR SCRIPT DEBUG is not supported by this server")
    } else {
        ctx.error("ERR Use SCRIPT DEBUG YES/SYNC/NO")
    }
}

fn help(ctx: &mut Ctx, lines: &[&str]) {
    let mut r = ctx.r();
    r.array(lines.len());
    for l in lines {
        r.simple(l);
    }
}

fn script_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    help(
        ctx,
        &[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Print this help.",
        ],
    );
}

fn function_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    help(
        ctx,
        &[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
            "HELP",
            "    Print this help.",
        ],
    );
}

fn function_load(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut replace = false;
    let mut i = 2;
    while i < argv.len() - 1 {
        if argv[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
            i += 1;
            continue;
        }
        return ctx.error(&format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(argv[i])
        ));
    }
    if i >= argv.len() {
        return ctx.error("ERR Function code is missing");
    }
    match functions::load(ctx.srv, argv[i], replace) {
        Ok(name) => {
            ctx.srv.add_dirty(1);
            ctx.r().bulk(name.as_bytes())
        }
        Err(e) => ctx.error(&e),
    }
}

fn function_delete(ctx: &mut Ctx, argv: &[&[u8]]) {
    let name = String::from_utf8_lossy(argv[2]).to_string();
    let st = &ctx.srv.scripting;
    let removed = st.libs.write().unlink(&name);
    if removed.is_none() {
        return ctx.error("ERR Library not found");
    }
    st.libs_gen.fetch_add(1, Ordering::SeqCst);
    ctx.srv.add_dirty(1);
    ctx.ok();
}

fn function_flush(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 3 {
        return ctx.error(
            "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
        );
    }
    if !flush_option(ctx, argv, "FUNCTION") {
        return;
    }
    let st = &ctx.srv.scripting;
    *st.libs.write() = functions::Libraries::default();
    st.libs_gen.fetch_add(1, Ordering::SeqCst);
    ctx.srv.add_dirty(1);
    ctx.ok();
}

fn function_list(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < argv.len() {
        if !with_code && argv[i].eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && argv[i].eq_ignore_ascii_case(b"libraryname") {
            if i >= argv.len() - 1 {
                return ctx.error("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(argv[i]);
        } else {
            return ctx.error(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(argv[i])
            ));
        }
        i += 1;
    }
    let libs: Vec<Arc<functions::Library>> = ctx
        .srv
        .scripting
        .libs
        .read()
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| strutil::glob_match(p, l.name.as_bytes(), true)))
        .cloned()
        .collect();
    let mut r = ctx.r();
    r.array(libs.len());
    for l in libs {
        r.map(if with_code { 4 } else { 3 });
        r.bulk(b"library_name");
        r.bulk(l.name.as_bytes());
        r.bulk(b"engine");
        r.bulk(b"LUA");
        r.bulk(b"functions");
        r.array(l.functions.len());
        for f in l.functions.values() {
            r.map(3);
            r.bulk(b"name");
            r.bulk(f.name.as_bytes());
            r.bulk(b"description");
            match &f.desc {
                Some(d) => r.bulk(d.as_bytes()),
                None => r.null(),
            }
            r.bulk(b"flags");
            let names: Vec<&str> = sflags::NAMES
                .iter()
                .filter(|(b, _)| f.flags & b != 0)
                .map(|(_, n)| *n)
                .collect();
            r.set(names.len());
            for n in names {
                r.simple(n);
            }
        }
        if with_code {
            r.bulk(b"library_code");
            r.bulk(&l.code);
        }
    }
}

fn function_stats(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let st = &ctx.srv.scripting;
    let running = st.running();
    if running.as_ref().is_some_and(|r| r.eval) {
        return ctx.error(scripting::BUSY_EVAL);
    }
    let (nlibs, nfuncs) = {
        let l = st.libs.read();
        (l.libs.len(), l.function_count())
    };
    let mut r = ctx.r();
    r.map(2);
    r.bulk(b"running_script");
    match running {
        None => r.null(),
        Some(run) => {
            r.map(3);
            r.bulk(b"name");
            r.bulk(run.name.as_bytes());
            r.bulk(b"command");
            r.array(run.argv.len());
            for a in &run.argv {
                r.bulk(a);
            }
            r.bulk(b"duration_ms");
            r.int(run.start.elapsed().as_millis() as i64);
        }
    }
    r.bulk(b"engines");
    r.map(1);
    r.bulk(b"LUA");
    r.map(2);
    r.bulk(b"libraries_count");
    r.int(nlibs as i64);
    r.bulk(b"functions_count");
    r.int(nfuncs as i64);
}

fn function_dump(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let payload = functions::dump(ctx.srv);
    ctx.r().bulk(&payload);
}

fn function_restore(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 4 {
        return ctx.error(
            "ERR unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.",
        );
    }
    let policy =
        match argv.get(3) {
            None => functions::RestorePolicy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"append") => functions::RestorePolicy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => functions::RestorePolicy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => functions::RestorePolicy::Flush,
            Some(_) => return ctx.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    match functions::restore(ctx.srv, argv[2], policy) {
        Ok(()) => {
            ctx.srv.add_dirty(1);
            ctx.ok()
        }
        Err(e) => ctx.error(&e),
    }
}
