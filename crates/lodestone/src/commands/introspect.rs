//! COMMAND and its subcommands, built from the command table, plus the
//! shared HELP reply format.

use super::{arity_ok, flags, Command, Ctx, Handler, Registry, ACL_CATEGORIES};
use resp::Reply;

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("command", command as Handler),
        ("command|count", command_count),
        ("command|info", command_info),
        ("command|docs", command_docs),
        ("command|list", command_list),
        ("command|getkeys", command_getkeys),
        ("command|getkeysandflags", command_getkeysandflags),
        ("command|help", command_help),
    ]);
}

/// Replies with Redis's HELP layout: a header line and the given lines,
/// then the common HELP line.
pub fn help_reply(ctx: &mut Ctx, cmd: &str, lines: &[&str]) {
    let mut r = ctx.r();
    r.array(lines.len() + 3);
    r.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        r.simple(l);
    }
    r.simple("HELP");
    r.simple("    Print this help.");
}

fn served(c: &Command) -> bool {
    c.handler.is_some() || !c.subcommands.is_empty()
}

/// Writes one command's COMMAND INFO entry (10 fields in Redis 7).
fn write_info(ctx_cmds: &super::CommandTable, r: &mut Reply, c: &Command) {
    r.array(10);
    r.bulk(c.name.as_bytes());
    r.int(c.arity as i64);
    let names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(b, _)| c.flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    r.set(names.len());
    for n in names {
        r.simple(n);
    }
    let k = c.keys.unwrap_or_default();
    r.int(k.first as i64);
    r.int(k.last as i64);
    r.int(k.step as i64);
    let cats: Vec<&str> = ACL_CATEGORIES
        .iter()
        .enumerate()
        .filter(|(i, _)| c.acl & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    r.set(cats.len());
    for n in cats {
        r.simple(&format!("@{n}"));
    }
    r.array(0); // tips
    let specs = super::keyspecs::specs(&c.name);
    if !specs.is_empty() {
        r.array(specs.len());
        for sp in specs {
            write_spec(r, sp);
        }
    } else {
        match c.keys {
            Some(k) => {
                r.array(1);
                write_key_spec(r, c, k);
            }
            None => r.array(0),
        }
    }
    let subs: Vec<&Command> = c
        .subcommands
        .iter()
        .map(|&i| &ctx_cmds.cmds[i])
        .filter(|s| served(s))
        .collect();
    r.array(subs.len());
    for s in subs {
        write_info(ctx_cmds, r, s);
    }
}

/// One of Redis's key specs as COMMAND INFO prints it.
/// A key spec's find-keys part: its type, then `spec` as a map of three
/// integer fields.
fn int_spec(r: &mut Reply, kind: &[u8], fields: [(&[u8], i32); 3]) {
    r.bulk(kind);
    r.bulk(b"spec");
    r.map(3);
    for (name, v) in fields {
        r.bulk(name);
        r.int(v as i64);
    }
}

fn write_spec(r: &mut Reply, sp: &super::keyspecs::Spec) {
    use super::keyspecs::{flag_names, Begin, Find};
    let f = flag_names(sp.flags);
    r.map(3 + sp.notes.is_some() as usize);
    if let Some(n) = sp.notes {
        r.bulk(b"notes");
        r.bulk(n.as_bytes());
    }
    r.bulk(b"flags");
    r.set(f.len());
    for x in f {
        r.simple(x);
    }
    r.bulk(b"begin_search");
    r.map(2);
    r.bulk(b"type");
    match &sp.begin {
        Begin::Index(i) => {
            r.bulk(b"index");
            r.bulk(b"spec");
            r.map(1);
            r.bulk(b"index");
            r.int(*i as i64);
        }
        Begin::Keyword(k, from) => {
            r.bulk(b"keyword");
            r.bulk(b"spec");
            r.map(2);
            r.bulk(b"keyword");
            r.bulk(k.as_bytes());
            r.bulk(b"startfrom");
            r.int(*from as i64);
        }
        Begin::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
    r.bulk(b"find_keys");
    r.map(2);
    r.bulk(b"type");
    match sp.find {
        Find::Range {
            lastkey,
            step,
            limit,
        } => {
            int_spec(
                r,
                b"range",
                [(b"lastkey", lastkey), (b"keystep", step), (b"limit", limit)],
            );
        }
        Find::Keynum {
            keynumidx,
            firstkey,
            step,
        } => {
            int_spec(
                r,
                b"keynum",
                [
                    (b"keynumidx", keynumidx),
                    (b"firstkey", firstkey),
                    (b"keystep", step),
                ],
            );
        }
        Find::Unknown => {
            r.bulk(b"unknown");
            r.bulk(b"spec");
            r.map(0);
        }
    }
}

fn key_spec_flags(c: &Command) -> Vec<&'static str> {
    if c.has(flags::WRITE) {
        if c.name.starts_with("del") || c.name == "unlink" || c.name == "getdel" {
            vec!["RM", "delete"]
        } else {
            vec!["RW", "update"]
        }
    } else {
        vec!["RO", "access"]
    }
}

fn write_key_spec(r: &mut Reply, c: &Command, k: super::KeyRange) {
    let f = key_spec_flags(c);
    r.map(3);
    r.bulk(b"flags");
    r.set(f.len());
    for x in f {
        r.simple(x);
    }
    r.bulk(b"begin_search");
    r.map(2);
    r.bulk(b"type");
    r.bulk(b"index");
    r.bulk(b"spec");
    r.map(1);
    r.bulk(b"index");
    r.int(k.first as i64);
    r.bulk(b"find_keys");
    r.map(2);
    r.bulk(b"type");
    r.bulk(b"range");
    r.bulk(b"spec");
    r.map(3);
    r.bulk(b"lastkey");
    r.int(if k.last < 0 {
        k.last as i64
    } else {
        (k.last - k.first) as i64
    });
    r.bulk(b"keystep");
    r.int(k.step as i64);
    r.bulk(b"limit");
    r.int(0);
}

fn command(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 1 {
        // Only reached for a top-level COMMAND with an unknown subcommand.
        return ctx.error(&format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            super::sanitize_for_error(argv[1], 128)
        ));
    }
    let t = &ctx.srv.commands;
    let cmds: Vec<&Command> = t.top_level().filter(|c| served(c)).collect();
    let mut r = ctx.r();
    r.array(cmds.len());
    for c in cmds {
        write_info(t, &mut r, c);
    }
}

fn command_count(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let n = ctx.srv.commands.top_level().filter(|c| served(c)).count();
    ctx.r().int(n as i64);
}

fn command_info(ctx: &mut Ctx, argv: &[&[u8]]) {
    let t = &ctx.srv.commands;
    if argv.len() == 2 {
        return command(ctx, &argv[..1]);
    }
    let mut r = ctx.r();
    r.array(argv.len() - 2);
    for name in &argv[2..] {
        match t
            .by_full_name(&String::from_utf8_lossy(name))
            .filter(|c| served(c))
        {
            Some(c) => write_info(t, &mut r, c),
            None => r.null_array(),
        }
    }
}

fn write_docs(t: &super::CommandTable, r: &mut Reply, c: &Command) {
    let subs: Vec<&Command> = c
        .subcommands
        .iter()
        .map(|&i| &t.cmds[i])
        .filter(|s| served(s))
        .collect();
    r.map(if subs.is_empty() { 4 } else { 5 });
    r.bulk(b"summary");
    r.bulk(c.summary.as_bytes());
    r.bulk(b"since");
    r.bulk(c.since.as_bytes());
    r.bulk(b"group");
    r.bulk(c.group.as_bytes());
    r.bulk(b"complexity");
    r.bulk(b"");
    if !subs.is_empty() {
        r.bulk(b"subcommands");
        r.map(subs.len());
        for s in subs {
            r.bulk(s.name.as_bytes());
            write_docs(t, r, s);
        }
    }
}

fn command_docs(ctx: &mut Ctx, argv: &[&[u8]]) {
    let t = &ctx.srv.commands;
    let list: Vec<&Command> = if argv.len() == 2 {
        t.top_level().filter(|c| served(c)).collect()
    } else {
        argv[2..]
            .iter()
            .filter_map(|n| t.lookup(n))
            .filter(|c| served(c))
            .collect()
    };
    let mut r = ctx.r();
    r.map(list.len());
    for c in list {
        r.bulk(c.name.as_bytes());
        write_docs(t, &mut r, c);
    }
}

fn command_list(ctx: &mut Ctx, argv: &[&[u8]]) {
    let t = &ctx.srv.commands;
    let mut filter: Option<(Vec<u8>, Vec<u8>)> = None;
    if argv.len() == 5 && argv[2].eq_ignore_ascii_case(b"filterby") {
        filter = Some((argv[3].to_ascii_lowercase(), argv[4].to_vec()));
    } else if argv.len() != 2 {
        return ctx.error(super::err::SYNTAX);
    }
    let mut names: Vec<&str> = Vec::new();
    for c in t
        .cmds
        .iter()
        .filter(|c| c.handler.is_some() || (c.parent.is_none() && served(c)))
    {
        let keep = match &filter {
            None => true,
            Some((k, v)) if k == b"pattern" => strutil::glob_match(v, c.name.as_bytes(), true),
            Some((k, v)) if k == b"aclcat" => {
                let cat = String::from_utf8_lossy(v).to_ascii_lowercase();
                ACL_CATEGORIES
                    .iter()
                    .position(|n| *n == cat)
                    .is_some_and(|i| c.acl & (1 << i) != 0)
            }
            Some((k, _)) if k == b"module" => false,
            Some(_) => return ctx.error(super::err::SYNTAX),
        };
        if keep {
            names.push(&c.name);
        }
    }
    let mut r = ctx.r();
    r.array(names.len());
    for n in names {
        r.bulk(n.as_bytes());
    }
}

/// Resolves the command given to GETKEYS and returns its key positions.
fn getkeys_positions<'t>(ctx: &mut Ctx<'t>, argv: &[&[u8]]) -> Option<(&'t Command, Vec<usize>)> {
    let args = &argv[2..];
    let t = &ctx.srv.commands;
    let Ok(c) = t.resolve(args) else {
        ctx.error("ERR Invalid command specified");
        return None;
    };
    let has_keys =
        c.keys_fn.is_some() || c.keys.is_some() || !super::keyspecs::specs(&c.name).is_empty();
    if !has_keys {
        ctx.error("ERR The command has no key arguments");
        return None;
    }
    if !arity_ok(c, args.len()) {
        ctx.error("ERR Invalid number of arguments specified for command");
        return None;
    }
    let pos: Vec<usize> = c.key_positions_of(args).to_vec();
    if pos.is_empty() {
        // Redis: EVAL with 0 keys and the like are fine, others are not.
        if c.has(flags::NO_MANDATORY_KEYS) {
            ctx.r().array(0);
        } else {
            ctx.error("ERR Invalid arguments specified for command");
        }
        return None;
    }
    Some((c, pos))
}

fn command_getkeys(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some((_, pos)) = getkeys_positions(ctx, argv) else {
        return;
    };
    let mut r = ctx.r();
    r.array(pos.len());
    for p in pos {
        r.bulk(argv[2 + p]);
    }
}

fn command_getkeysandflags(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some((c, pos)) = getkeys_positions(ctx, argv) else {
        return;
    };
    let args = &argv[2..];
    let per_key = super::keyspecs::key_flags(&c.name, args, &pos);
    let fallback = key_spec_flags(c);
    let mut r = ctx.r();
    r.array(pos.len());
    for (p, f) in pos.iter().zip(per_key) {
        r.array(2);
        r.bulk(args[*p]);
        // Commands Redis has no key spec for keep the old approximation.
        let names = if f == 0 {
            fallback.clone()
        } else {
            super::keyspecs::flag_names(f)
        };
        r.set(names.len());
        for x in names {
            r.simple(x);
        }
    }
}

fn command_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    help_reply(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
}
