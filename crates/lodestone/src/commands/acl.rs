//! The ACL command (SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT,
//! GENPASS, LOG, DRYRUN, LOAD, SAVE, HELP) and the ACL hooks of EXEC and
//! scripts. Users and checks live in [`crate::acl`].

use super::{err, Command, Ctx, Handler, Registry, ACL_CATEGORIES};
use crate::acl::{self, Denied, LogCtx};
use std::sync::Arc;

pub const TABLE: &str = "\
acl|server|-2|6.0.0|sentinel|-|-|A container for Access List Control commands.
acl|cat|server|-2|6.0.0|noscript,loading,stale,sentinel|-|-|Lists the ACL categories, or the commands inside a category.
acl|deluser|server|-3|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Deletes ACL users, and terminates their connections.
acl|dryrun|server|-4|7.0.0|admin,noscript,loading,stale,sentinel|-|-|Simulates the execution of a command by a user, without executing the command.
acl|genpass|server|-2|6.0.0|noscript,loading,stale,sentinel|-|-|Generates a pseudorandom, secure password that can be used to identify ACL users.
acl|getuser|server|3|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Lists the ACL rules of a user.
acl|help|server|2|6.0.0|loading,stale,sentinel|-|-|Returns helpful text about the different subcommands.
acl|list|server|2|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Dumps the effective rules in ACL file format.
acl|load|server|2|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Reloads the rules from the configured ACL file.
acl|log|server|-2|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Lists recent security events generated due to ACL rules.
acl|save|server|2|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Saves the effective ACL rules in the configured ACL file.
acl|setuser|server|-3|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Creates and modifies an ACL user and its rules.
acl|users|server|2|6.0.0|admin,noscript,loading,stale,sentinel|-|-|Lists all ACL users.
acl|whoami|server|2|6.0.0|noscript,loading,stale,sentinel|-|-|Returns the authenticated username of the current connection.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("acl|cat", cat as Handler),
        ("acl|deluser", deluser),
        ("acl|dryrun", dryrun),
        ("acl|genpass", genpass),
        ("acl|getuser", getuser),
        ("acl|help", help),
        ("acl|list", list),
        ("acl|load", load),
        ("acl|save", save),
        ("acl|log", log),
        ("acl|setuser", setuser),
        ("acl|users", users),
        ("acl|whoami", whoami),
    ]);
}

fn syntax_error(ctx: &mut Ctx, argv: &[&[u8]]) {
    ctx.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        super::sanitize_for_error(argv[1], 128)
    ));
}

fn setuser(ctx: &mut Ctx, argv: &[&[u8]]) {
    let name = argv[2];
    if name.iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
        return ctx.error("ERR Usernames can't contain spaces or null characters");
    }
    match ctx.srv.acl.set_user(ctx.srv, name, &argv[3..]) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.error(&format!("ERR {e}")),
    }
}

fn deluser(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv[2..].iter().any(|n| *n == b"default") {
        return ctx.error("ERR The 'default' user cannot be removed");
    }
    let gone = ctx.srv.acl.del_users(&argv[2..]);
    drop_users(ctx, &gone);
    ctx.r().int(gone.len() as i64);
}

/// Closes the connections of removed users; the caller's own connection
/// gets its reply first, as in Redis.
fn drop_users(ctx: &mut Ctx, gone: &[Arc<acl::User>]) {
    let me = ctx.client.handle.user.lock().clone();
    if gone.iter().any(|u| *u.name == *me) {
        ctx.client.close_after_reply = true;
        ctx.client.authenticated = false;
        ctx.client.acl = acl::ClientAcl::of(ctx.srv.acl.default_user());
    }
    acl::kill_clients_of(ctx.srv, gone, ctx.client.id());
}

fn getuser(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(u) = ctx.srv.acl.user(argv[2]) else {
        return ctx.r().null();
    };
    let d = acl::describe_for_getuser(&u);
    let mut r = ctx.r();
    r.map(6);
    r.bulk(b"flags");
    r.set(d.flags.len());
    for f in &d.flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"passwords");
    r.array(d.passwords.len());
    for p in &d.passwords {
        r.bulk(p.as_bytes());
    }
    let root = &d.selectors[0];
    r.bulk(b"commands");
    r.bulk(root.0.as_bytes());
    r.bulk(b"keys");
    r.bulk(&root.1);
    r.bulk(b"channels");
    r.bulk(&root.2);
    r.bulk(b"selectors");
    r.array(d.selectors.len() - 1);
    for s in &d.selectors[1..] {
        r.map(3);
        r.bulk(b"commands");
        r.bulk(s.0.as_bytes());
        r.bulk(b"keys");
        r.bulk(&s.1);
        r.bulk(b"channels");
        r.bulk(&s.2);
    }
}

fn list(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let lines = ctx.srv.acl.list();
    let mut r = ctx.r();
    r.array(lines.len());
    for l in lines {
        r.bulk(&l);
    }
}

fn users(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let names = ctx.srv.acl.names();
    let mut r = ctx.r();
    r.array(names.len());
    for n in names {
        r.bulk(n.as_bytes());
    }
}

fn whoami(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let name = ctx.client.acl.name().to_string();
    ctx.r().bulk(name.as_bytes());
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn load(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let path = ctx.srv.config.get_str("aclfile");
    if path.is_empty() {
        return ctx.error(NO_ACLFILE);
    }
    match ctx.srv.acl.load_file(ctx.srv, &path, ctx.client.id()) {
        Ok(gone) => {
            drop_users(ctx, &gone);
            ctx.ok()
        }
        Err(e) => ctx.error(&format!("ERR {e}")),
    }
}

fn save(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let path = ctx.srv.config.get_str("aclfile");
    if path.is_empty() {
        return ctx.error(NO_ACLFILE);
    }
    match ctx.srv.acl.save_file(&path) {
        Ok(()) => ctx.ok(),
        Err(_) => ctx.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information"),
    }
}

fn cat(ctx: &mut Ctx, argv: &[&[u8]]) {
    match argv.len() {
        2 => {
            let mut r = ctx.r();
            r.array(ACL_CATEGORIES.len());
            for c in ACL_CATEGORIES {
                r.bulk(c.as_bytes());
            }
        }
        3 => {
            let name = String::from_utf8_lossy(argv[2]);
            let Some(bit) = acl::category_bit(&name) else {
                return ctx.error(&format!(
                    "ERR Unknown category '{}'",
                    super::sanitize_for_error(argv[2], 128)
                ));
            };
            let names: Vec<&str> = ctx
                .srv
                .commands
                .cmds
                .iter()
                .filter(|c| c.acl & bit != 0)
                .map(|c| c.name.as_str())
                .collect();
            let mut r = ctx.r();
            r.array(names.len());
            for n in names {
                r.bulk(n.as_bytes());
            }
        }
        _ => syntax_error(ctx, argv),
    }
}

fn genpass(ctx: &mut Ctx, argv: &[&[u8]]) {
    let bits = match argv.len() {
        2 => 256,
        3 => match strutil::parse_i64(argv[2]) {
            Some(n) => n,
            None => return ctx.error(err::NOT_INT),
        },
        _ => return syntax_error(ctx, argv),
    };
    if bits <= 0 || bits > 4096 {
        return ctx.error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
    }
    let chars = ((bits + 3) / 4) as usize;
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let hex: Vec<u8> = (0..chars)
        .map(|_| b"0123456789abcdef"[rng.gen_range(0..16)])
        .collect();
    ctx.r().bulk(&hex);
}

fn log(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut count = 10i64;
    match argv.len() {
        2 => {}
        3 => {
            if argv[2].eq_ignore_ascii_case(b"reset") {
                ctx.srv.acl.log_reset();
                return ctx.ok();
            }
            match strutil::parse_i64(argv[2]) {
                Some(n) => count = n.max(0),
                None => return ctx.error(err::NOT_INT),
            }
        }
        _ => return syntax_error(ctx, argv),
    }
    let entries = ctx.srv.acl.log_entries(count as usize);
    let now = crate::server::now_ms();
    let mut r = ctx.r();
    r.array(entries.len());
    for e in entries {
        r.map(10);
        r.bulk(b"count");
        r.int(e.count as i64);
        r.bulk(b"reason");
        r.bulk(e.reason.as_bytes());
        r.bulk(b"context");
        r.bulk(e.context_name().as_bytes());
        r.bulk(b"object");
        r.bulk(&e.object);
        r.bulk(b"username");
        r.bulk(e.username.as_bytes());
        r.bulk(b"age-seconds");
        let age = now.saturating_sub(e.ctime) as f64 / 1000.0;
        r.double_text(strutil::format_double(age).as_bytes());
        r.bulk(b"client-info");
        r.bulk(e.cinfo.as_bytes());
        r.bulk(b"entry-id");
        r.int(e.entry_id as i64);
        r.bulk(b"timestamp-created");
        r.int(e.created as i64);
        r.bulk(b"timestamp-last-updated");
        r.int(e.ctime as i64);
    }
}

fn dryrun(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    let Some(u) = srv.acl.user(argv[2]) else {
        return ctx.error(&format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(argv[2])
        ));
    };
    let args = &argv[3..];
    let Some(cmd) = lookup_command(srv, args) else {
        return ctx.error(&format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(args[0])
        ));
    };
    if !super::arity_ok(cmd, args.len()) {
        return ctx.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.name
        ));
    }
    match srv.acl.check_user(&u, cmd, args) {
        Ok(()) => ctx.ok(),
        Err(d) => {
            let msg = acl::error_message(d, &u.name, cmd, args, true);
            ctx.r().bulk(msg.as_bytes())
        }
    }
}

/// Redis's lookupCommand: the command, or its subcommand when it has
/// subcommands and one is named (None when that one does not exist).
pub fn lookup_command<'a>(srv: &'a crate::server::Server, argv: &[&[u8]]) -> Option<&'a Command> {
    let base = srv.commands.lookup(argv[0])?;
    if argv.len() == 1 || base.subcommands.is_empty() {
        return Some(base);
    }
    srv.commands.lookup_sub(base, argv[1])
}

fn help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
}

/// EXEC's second check: ACL rules may have changed since a command was
/// queued (Redis's execCommand). Err is the reply for that command.
pub fn exec_recheck(ctx: &mut Ctx, cmd: &Command, argv: &[&[u8]]) -> Result<(), String> {
    if ctx.client.acl.unrestricted() {
        return Ok(());
    }
    acl::check_client(ctx, cmd, argv, LogCtx::Multi).map_err(|d| {
        let reason = match d {
            Denied::Cmd | Denied::Auth => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer executable: {reason}")
    })
}

/// The check of a command a script calls (`redis.call`): Err is the
/// script error, after the denial was logged with the `lua` context.
pub fn script_check(ctx: &mut Ctx, cmd: &Command, argv: &[&[u8]]) -> Result<(), String> {
    if ctx.client.acl.unrestricted() {
        return Ok(());
    }
    acl::check_client(ctx, cmd, argv, LogCtx::Lua).map_err(|d| {
        let user = ctx.client.acl.name().to_string();
        format!(
            "ACL failure in script: {}",
            acl::error_message(d, &user, cmd, argv, false)
        )
    })
}

/// `redis.acl_check_cmd`: whether the script's user may run `argv`;
/// None when the command does not exist.
pub fn script_allows(ctx: &mut Ctx, argv: &[&[u8]]) -> Option<bool> {
    let srv = ctx.srv;
    if argv.is_empty() {
        return None;
    }
    let cmd = lookup_command(srv, argv)?;
    if ctx.client.acl.unrestricted() {
        return Some(true);
    }
    let user = ctx.client.acl.user.clone()?;
    Some(srv.acl.check_user(&user, cmd, argv).is_ok())
}

/// SORT's BY (with a pattern) and GET read arbitrary keys: Redis refuses
/// them unless the user may read every key (ACLUserCheckCmdWithUnrestrictedKeyAccess).
/// The error for the first such option, if refused.
pub fn sort_option_denied(ctx: &mut Ctx, argv: &[&[u8]], readonly: bool) -> Option<&'static str> {
    if ctx.client.acl.unrestricted() {
        return None;
    }
    let user = ctx.client.acl.user.clone()?;
    let cmd = ctx.srv.commands.lookup(argv[0])?;
    if ctx.srv.acl.check_user_all_keys(&user, cmd, argv, acl::READ) {
        return None;
    }
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            j += 2;
        } else if (!readonly && a.eq_ignore_ascii_case(b"store")) && left >= 1 {
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            if argv[j + 1].contains(&b'*') {
                return Some("ERR BY option of SORT denied due to insufficient ACL permissions.");
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            return Some("ERR GET option of SORT denied due to insufficient ACL permissions.");
        }
        j += 1;
    }
    None
}
