//! Users and permissions (Redis's ACL): rules, checks, the ACL log and
//! the ACL file.
//!
//! A [`User`] holds its current [`Perms`] behind a lock; every change
//! builds a new `Perms` and swaps it in, then bumps the global generation
//! [`GEN`]. A connection keeps its user's `Perms` cached in [`ClientAcl`]
//! and refreshes it only when the generation moved, so the per-command cost
//! for a user that may run anything (the default user) is one atomic load
//! and a flag test. Command permissions are precomputed bitmaps indexed by
//! the command table's ids; the textual rules are kept as Redis keeps them
//! (`command_rules`) so ACL LIST/GETUSER print what Redis prints.

use crate::commands::keyspecs::{self, kf};
use crate::commands::{flags, Command, CommandTable, ACL_CATEGORIES};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Key pattern permission bit for reading (`%R~`; `~` is read and write).
pub const READ: u8 = 1;
/// Key pattern permission bit for writing (`%W~`).
pub const WRITE: u8 = 2;
const ALL_PERM: u8 = READ | WRITE;

/// User flag: may log in.
pub const ON: u8 = 1;
/// User flag: may not log in (new users start off).
pub const OFF: u8 = 2;
/// User flag: any password opens it.
pub const NOPASS: u8 = 4;
/// User flag: RESTORE payloads are not sanitized.
pub const SKIP_SANITIZE: u8 = 8;
/// User flag: RESTORE payloads are sanitized (the default).
pub const SANITIZE: u8 = 16;
const USER_FLAG_NAMES: &[(u8, &str)] = &[
    (ON, "on"),
    (OFF, "off"),
    (NOPASS, "nopass"),
    (SKIP_SANITIZE, "skip-sanitize-payload"),
    (SANITIZE, "sanitize-payload"),
];

/// Bumped after every change to any user: connections refresh their
/// cached permissions when they see it move.
pub static GEN: AtomicU64 = AtomicU64::new(1);

/// Why a rule was refused (Redis's errno values in ACLSetUser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    NoEnt,
    Inval,
    Exist,
    IsDir,
    NoDev,
    BadMsg,
    Already,
    Child,
}

impl RuleError {
    /// Redis's ACLSetUserStringError text.
    pub fn text(self) -> &'static str {
        match self {
            RuleError::NoEnt => "Unknown command or category name in ACL",
            RuleError::Inval => "Syntax error",
            RuleError::Exist => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::IsDir => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoDev => "The password you are trying to remove from the user does not exist",
            RuleError::BadMsg => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::Already => "Duplicate user found. A user can only be defined once in config files",
            RuleError::Child => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// One set of permissions: commands, keys, channels. A user has a root
/// selector and any number of `(...)` selectors; a command is allowed when
/// one selector allows all of it.
#[derive(Clone, Debug)]
pub struct Selector {
    root: bool,
    allkeys: bool,
    allchannels: bool,
    allcommands: bool,
    /// Set by +@all, cleared by -@all only (Redis's reserved bit): the
    /// description starts with +@all when set.
    future: bool,
    bits: Vec<u64>,
    /// Allowed first arguments of otherwise denied commands (+select|0).
    firstargs: Vec<(usize, Vec<String>)>,
    patterns: Vec<(u8, Vec<u8>)>,
    channels: Vec<Vec<u8>>,
    /// The command rules as given, compacted (Redis's command_rules).
    rules: Vec<String>,
}

impl Selector {
    fn new(root: bool, ncmds: usize, pubsub_all: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels: pubsub_all,
            allcommands: false,
            future: false,
            bits: vec![0; ncmds.div_ceil(64)],
            firstargs: Vec::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Allows or denies a command and, for a container, its subcommands.
    fn change_perm(&mut self, cmd: &Command, allow: bool) {
        self.set_bit(cmd.id, allow);
        self.firstargs.retain(|(id, _)| *id != cmd.id);
        for &s in &cmd.subcommands {
            self.set_bit(s, allow);
        }
    }

    /// Records a rule, dropping earlier ones it overrides (the same rule,
    /// or subcommand rules of a whole command): Redis's
    /// ACLUpdateCommandRules.
    fn update_rules(&mut self, rule: &str, allow: bool) {
        let rule = rule.to_ascii_lowercase();
        self.rules.retain(|r| {
            let r = &r[1..];
            !(r == rule
                || (r.len() > rule.len()
                    && r.starts_with(&rule)
                    && r.as_bytes()[rule.len()] == b'|'))
        });
        self.rules
            .push(format!("{}{}", if allow { '+' } else { '-' }, rule));
    }

    /// Applies one selector rule (Redis's ACLSetSelector).
    fn apply(&mut self, t: &CommandTable, op: &[u8]) -> Result<(), RuleError> {
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.patterns.clear();
                return Ok(());
            }
            "resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
                return Ok(());
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
                return Ok(());
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
                return Ok(());
            }
            "allcommands" | "+@all" => {
                self.bits.iter_mut().for_each(|w| *w = !0);
                self.allcommands = true;
                self.future = true;
                self.rules.clear();
                self.firstargs.clear();
                return Ok(());
            }
            "nocommands" | "-@all" => {
                self.bits.iter_mut().for_each(|w| *w = 0);
                self.allcommands = false;
                self.future = false;
                self.rules.clear();
                self.firstargs.clear();
                return Ok(());
            }
            _ => {}
        }
        match op.first() {
            Some(b'~') | Some(b'%') => {
                if self.allkeys {
                    return Err(RuleError::Exist);
                }
                let mut fl = 0u8;
                let mut off = 1;
                if op[0] == b'%' {
                    let mut closed = false;
                    while off < op.len() {
                        let c = op[off].to_ascii_uppercase();
                        if c == b'R' && fl & READ == 0 {
                            fl |= READ;
                        } else if c == b'W' && fl & WRITE == 0 {
                            fl |= WRITE;
                        } else if op[off] == b'~' && fl != 0 {
                            off += 1;
                            closed = true;
                            break;
                        } else {
                            return Err(RuleError::Inval);
                        }
                        off += 1;
                    }
                    if !closed {
                        return Err(RuleError::Inval);
                    }
                } else {
                    fl = ALL_PERM;
                }
                let pat = &op[off..];
                if has_spaces(pat) {
                    return Err(RuleError::Inval);
                }
                match self.patterns.iter_mut().find(|(_, p)| p == pat) {
                    Some(p) => p.0 |= fl,
                    None => self.patterns.push((fl, pat.to_vec())),
                }
                self.allkeys = false;
            }
            Some(b'&') => {
                if self.allchannels {
                    return Err(RuleError::IsDir);
                }
                let pat = &op[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Inval);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
                self.allchannels = false;
            }
            Some(b'+') if op.get(1) != Some(&b'@') => {
                let name = &lower[1..];
                match name.rsplit_once('|') {
                    None => {
                        let cmd = lookup(t, name).ok_or(RuleError::NoEnt)?;
                        self.change_perm(cmd, true);
                        self.update_rules(&cmd.name, true);
                    }
                    Some((parent, sub)) => {
                        let cmd = lookup(t, parent).ok_or(RuleError::NoEnt)?;
                        if cmd.parent.is_some() {
                            return Err(RuleError::Child);
                        }
                        if sub.is_empty() {
                            return Err(RuleError::Inval);
                        }
                        if !cmd.subcommands.is_empty() {
                            let sc = lookup(t, name).ok_or(RuleError::NoEnt)?;
                            self.change_perm(sc, true);
                        } else {
                            // SELECT|0, DEBUG|OBJECT: a first argument.
                            match self.firstargs.iter_mut().find(|(id, _)| *id == cmd.id) {
                                Some((_, v)) => {
                                    if !v.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                                        v.push(sub.to_string());
                                    }
                                }
                                None => self.firstargs.push((cmd.id, vec![sub.to_string()])),
                            }
                        }
                        self.update_rules(name, true);
                    }
                }
            }
            Some(b'-') if op.get(1) != Some(&b'@') => {
                let cmd = lookup(t, &lower[1..]).ok_or(RuleError::NoEnt)?;
                self.change_perm(cmd, false);
                self.update_rules(&cmd.name, false);
            }
            Some(b'+') | Some(b'-') => {
                let allow = op[0] == b'+';
                let cat = category_bit(&lower[2..]).ok_or(RuleError::NoEnt)?;
                self.update_rules(&lower[1..], allow);
                for c in &t.cmds {
                    if c.acl & cat != 0 {
                        self.change_perm(c, allow);
                    }
                }
            }
            _ => return Err(RuleError::Inval),
        }
        Ok(())
    }

    /// The command rules as ACL GETUSER shows them.
    fn describe_commands(&self) -> String {
        let mut s = String::from(if self.future { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    fn describe_keys(&self, sep: &str) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, (fl, p)) in self.patterns.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(sep.as_bytes());
            }
            out.extend_from_slice(match *fl {
                READ => b"%R~",
                WRITE => b"%W~",
                _ => b"~",
            });
            out.extend_from_slice(p);
        }
        out
    }

    fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The selector in ACL LIST form (Redis's ACLDescribeSelector).
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else if !self.patterns.is_empty() {
            out.extend(self.describe_keys(" "));
            out.push(b' ');
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend(self.describe_commands().into_bytes());
        out
    }

    fn unrestricted(&self) -> bool {
        self.allcommands && self.allkeys && self.allchannels
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|c| c.is_ascii_whitespace() || *c == 0)
}

/// Redis's ACLLookupCommand: `name` or `parent|sub`, case-insensitively.
fn lookup<'t>(t: &'t CommandTable, name: &str) -> Option<&'t Command> {
    let parts: Vec<&str> = name.split('|').collect();
    match parts.len() {
        1 => t.lookup(parts[0].as_bytes()),
        2 => {
            let base = t.lookup(parts[0].as_bytes())?;
            if base.subcommands.is_empty() {
                return None;
            }
            t.lookup_sub(base, parts[1].as_bytes())
        }
        _ => None,
    }
}

/// The category bit of a name (without `@`), case-insensitively.
pub fn category_bit(name: &str) -> Option<u32> {
    ACL_CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// Everything about a user that rules change; swapped as a whole.
#[derive(Clone, Debug)]
pub struct Perms {
    pub flags: u8,
    /// SHA-256 hex digests.
    pub passwords: Vec<String>,
    /// `selectors[0]` is the root selector.
    selectors: Vec<Selector>,
    /// The root selector allows every command, key and channel.
    pub unrestricted: bool,
}

impl Perms {
    fn new(ncmds: usize, pubsub_all: bool) -> Perms {
        Perms {
            flags: OFF | SANITIZE,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, ncmds, pubsub_all)],
            unrestricted: false,
        }
    }

    fn enabled(&self) -> bool {
        self.flags & OFF == 0 && self.flags & ON != 0
    }

    /// Applies one user rule (Redis's ACLSetUser).
    fn apply(&mut self, t: &CommandTable, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        let r = self.apply_inner(t, op, pubsub_all);
        self.unrestricted = self.selectors[0].unrestricted();
        r
    }

    fn apply_inner(
        &mut self,
        t: &CommandTable,
        op: &[u8],
        pubsub_all: bool,
    ) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.flags = (self.flags | ON) & !OFF,
            "off" => self.flags = (self.flags | OFF) & !ON,
            "skip-sanitize-payload" => self.flags = (self.flags | SKIP_SANITIZE) & !SANITIZE,
            "sanitize-payload" => self.flags = (self.flags | SANITIZE) & !SKIP_SANITIZE,
            "nopass" => {
                self.flags |= NOPASS;
                self.passwords.clear();
            }
            "resetpass" => {
                self.flags &= !NOPASS;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                for r in ["resetpass", "resetkeys", "resetchannels"] {
                    self.apply_inner(t, r.as_bytes(), pubsub_all)?;
                }
                if pubsub_all {
                    self.apply_inner(t, b"allchannels", pubsub_all)?;
                }
                for r in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                    self.apply_inner(t, r.as_bytes(), pubsub_all)?;
                }
            }
            _ => match op[0] {
                b'>' | b'#' => {
                    let h = if op[0] == b'>' {
                        hash_password(&op[1..])
                    } else {
                        check_hash(&op[1..])?
                    };
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.flags &= !NOPASS;
                }
                b'<' | b'!' => {
                    let h = if op[0] == b'<' {
                        hash_password(&op[1..])
                    } else {
                        check_hash(&op[1..])?
                    };
                    let before = self.passwords.len();
                    self.passwords.retain(|p| *p != h);
                    if self.passwords.len() == before {
                        return Err(RuleError::NoDev);
                    }
                }
                b'(' if op.len() >= 2 && op[op.len() - 1] == b')' => {
                    let mut s = Selector::new(false, t.cmds.len(), pubsub_all);
                    let mut scratch = Vec::new();
                    let mut ranges = Vec::new();
                    if resp::split_args(&op[1..op.len() - 1], &mut scratch, &mut ranges) {
                        for r in ranges {
                            s.apply(t, &scratch[r])?;
                        }
                    }
                    self.selectors.push(s);
                }
                _ => self.selectors[0].apply(t, op)?,
            },
        }
        Ok(())
    }

    /// The user in ACL LIST form, without `user <name> `.
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, name) in USER_FLAG_NAMES {
            if self.flags & f != 0 {
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
            }
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                out.extend(s.describe());
            } else {
                out.extend_from_slice(b" (");
                out.extend(s.describe());
                out.push(b')');
            }
        }
        out
    }

    /// Whether `pass` opens this user.
    fn password_ok(&self, pass: &[u8]) -> bool {
        if self.flags & NOPASS != 0 {
            return true;
        }
        let h = hash_password(pass);
        // Constant-time per candidate, like Redis's time_independent_strcmp.
        self.passwords.iter().any(|p| {
            p.len() == h.len()
                && p.bytes()
                    .zip(h.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }
}

fn hash_password(p: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(p);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn check_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64
        || !h
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return Err(RuleError::BadMsg);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// A user: its name and its current permissions.
#[derive(Debug)]
pub struct User {
    pub name: String,
    perms: RwLock<Arc<Perms>>,
    /// Set by ACL DELUSER / ACL LOAD: its connections lose every right
    /// until they are closed.
    deleted: AtomicBool,
}

impl User {
    fn new(name: &str, perms: Perms) -> Arc<User> {
        Arc::new(User {
            name: name.to_string(),
            perms: RwLock::new(Arc::new(perms)),
            deleted: AtomicBool::new(false),
        })
    }

    /// The user's current permissions.
    pub fn perms(&self) -> Arc<Perms> {
        self.perms.read().clone()
    }

    fn replace(&self, p: Perms) {
        *self.perms.write() = Arc::new(p);
        GEN.fetch_add(1, Ordering::Release);
    }
}

/// A connection's user and its cached permissions.
#[derive(Clone, Debug, Default)]
pub struct ClientAcl {
    /// None for internal clients (AOF loading), which may run anything.
    pub user: Option<Arc<User>>,
    perms: Option<Arc<Perms>>,
    gen: u64,
    all: bool,
}

impl ClientAcl {
    /// A client acting as `user`.
    pub fn of(user: Arc<User>) -> ClientAcl {
        let mut c = ClientAcl {
            user: Some(user),
            perms: None,
            gen: 0,
            all: false,
        };
        c.refresh();
        c
    }

    /// The user a connection is logged in as, from its shared handle
    /// (for proxies that run a command on its behalf); a user deleted
    /// meanwhile has no rights.
    pub fn for_handle(
        srv: &crate::server::Server,
        h: &crate::server::client::ClientHandle,
    ) -> ClientAcl {
        let name = h.user.lock().clone();
        let user = srv.acl.user(name.as_bytes()).unwrap_or_else(|| {
            let u = User::new(&name, Perms::new(srv.commands.cmds.len(), false));
            u.deleted.store(true, Ordering::Relaxed);
            u
        });
        ClientAcl::of(user)
    }

    fn refresh(&mut self) {
        self.gen = GEN.load(Ordering::Acquire);
        if let Some(u) = &self.user {
            let p = if u.deleted.load(Ordering::Relaxed) {
                Arc::new(Perms::new(0, false))
            } else {
                u.perms()
            };
            self.all = p.unrestricted;
            self.perms = Some(p);
        }
    }

    /// True when the client may run anything: the dispatcher's fast path
    /// (one atomic load while no user changed).
    #[inline]
    pub fn unrestricted(&mut self) -> bool {
        if self.user.is_none() {
            return true;
        }
        if self.gen != GEN.load(Ordering::Acquire) {
            self.refresh();
        }
        self.all
    }

    /// The user's name ("default" for internal clients, as Redis shows them).
    pub fn name(&self) -> &str {
        self.user.as_ref().map_or("default", |u| u.name.as_str())
    }

    fn perms(&mut self) -> Option<Arc<Perms>> {
        if self.unrestricted() {
            return None;
        }
        self.perms.clone()
    }
}

/// Why a check failed, with the argument index Redis logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Cmd,
    Key(usize),
    Channel(usize),
    Auth,
}

impl Denied {
    fn rank(self) -> u8 {
        match self {
            Denied::Cmd => 1,
            Denied::Key(_) => 2,
            Denied::Auth => 3,
            Denied::Channel(_) => 4,
        }
    }

    fn pos(self) -> usize {
        match self {
            Denied::Key(p) | Denied::Channel(p) => p,
            _ => 0,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Denied::Cmd => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
            Denied::Auth => "auth",
        }
    }
}

/// Per-command facts the checks need, indexed by command id.
struct Meta {
    /// Whether the command has Redis key specs (else the fallback access).
    has_specs: Vec<bool>,
    /// 0 none, 1 publish (argv[1]), 2 subscribe (all), 3 psubscribe.
    channels: Vec<u8>,
}

impl Meta {
    fn new(t: &CommandTable) -> Meta {
        let has_specs = t
            .cmds
            .iter()
            .map(|c| !keyspecs::specs(&c.name).is_empty())
            .collect();
        let channels = t
            .cmds
            .iter()
            .map(|c| match c.name.as_str() {
                "publish" | "spublish" => 1,
                "subscribe" | "ssubscribe" => 2,
                "psubscribe" => 3,
                _ => 0,
            })
            .collect();
        Meta {
            has_specs,
            channels,
        }
    }

    /// The keys of a command with the access each needs, from the same
    /// key specs COMMAND GETKEYSANDFLAGS reports (SET's and BITFIELD's
    /// flags depend on their arguments there). Shard channels are not keys.
    fn keys(&self, cmd: &Command, argv: &[&[u8]]) -> smallvec::SmallVec<[(usize, u8); 4]> {
        let pos = cmd.key_positions_of(argv);
        if !self.has_specs[cmd.id] {
            let access = if cmd.has(flags::WRITE) {
                READ | WRITE
            } else {
                READ
            };
            return pos.into_iter().map(|p| (p, access)).collect();
        }
        let key_flags = keyspecs::key_flags(&cmd.name, argv, &pos);
        pos.into_iter()
            .zip(key_flags)
            .filter_map(|(p, f)| access_of(f).map(|a| (p, a)))
            .collect()
    }
}

/// The ACL access a key's spec flags ask for, as Redis's ACL check reads
/// them: ACCESS needs read permission, INSERT/DELETE/UPDATE write
/// permission (neither, as for EXISTS: any matching pattern will do).
/// None for a NOT_KEY argument (shard channels).
fn access_of(f: u32) -> Option<u8> {
    if f & kf::NOT_KEY != 0 {
        return None;
    }
    let mut a = 0;
    if f & kf::ACCESS != 0 {
        a |= READ;
    }
    if f & (kf::INSERT | kf::DELETE | kf::UPDATE) != 0 {
        a |= WRITE;
    }
    Some(a)
}

fn selector_key_ok(s: &Selector, key: &[u8], need: u8) -> bool {
    s.allkeys
        || s.patterns
            .iter()
            .any(|(f, p)| f & need == need && strutil::glob_match(p, key, false))
}

fn channel_ok(list: &[Vec<u8>], ch: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p.as_slice() == ch
        } else {
            strutil::glob_match(p, ch, false)
        }
    })
}

type KeyCache = Option<smallvec::SmallVec<[(usize, u8); 4]>>;

fn selector_check(
    meta: &Meta,
    s: &Selector,
    cmd: &Command,
    argv: &[&[u8]],
    cache: &mut KeyCache,
) -> Result<(), Denied> {
    if !s.allcommands && !cmd.has(flags::NO_AUTH) && !s.bit(cmd.id) {
        let idx = if cmd.parent.is_some() { 2 } else { 1 };
        let ok = argv.len() >= 2
            && s.firstargs.iter().any(|(id, v)| {
                *id == cmd.id
                    && argv
                        .get(idx)
                        .is_some_and(|a| v.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(a)))
            });
        if !ok {
            return Err(Denied::Cmd);
        }
    }
    if !s.allkeys {
        let keys = cache.get_or_insert_with(|| meta.keys(cmd, argv));
        for &(p, need) in keys.iter() {
            if !selector_key_ok(s, argv[p], need) {
                return Err(Denied::Key(p));
            }
        }
    }
    if !s.allchannels {
        let kind = meta.channels[cmd.id];
        if kind != 0 {
            let end = if kind == 1 {
                2.min(argv.len())
            } else {
                argv.len()
            };
            for (p, ch) in argv.iter().enumerate().take(end).skip(1) {
                if !channel_ok(&s.channels, ch, kind == 3) {
                    return Err(Denied::Channel(p));
                }
            }
        }
    }
    Ok(())
}

/// Redis's ACLCheckAllUserCommandPerm: Ok when a selector allows it all,
/// else the most relevant denial (channel over key over command, the
/// latest argument on ties).
fn check_perms(meta: &Meta, p: &Perms, cmd: &Command, argv: &[&[u8]]) -> Result<(), Denied> {
    let mut worst = Denied::Cmd;
    let mut cache = None;
    for s in &p.selectors {
        match selector_check(meta, s, cmd, argv, &mut cache) {
            Ok(()) => return Ok(()),
            Err(d) => {
                if d.rank() > worst.rank() || (d.rank() == worst.rank() && d.pos() > worst.pos()) {
                    worst = d;
                }
            }
        }
    }
    Err(worst)
}

/// Where a denial happened (ACL LOG `context`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LogCtx {
    Toplevel,
    Multi,
    Lua,
}

impl LogCtx {
    fn name(self) -> &'static str {
        match self {
            LogCtx::Toplevel => "toplevel",
            LogCtx::Multi => "multi",
            LogCtx::Lua => "lua",
        }
    }
}

/// One ACL LOG entry, with Redis's fields.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: LogCtx,
    pub object: Vec<u8>,
    pub username: String,
    pub ctime: u64,
    pub cinfo: String,
    pub entry_id: u64,
    pub created: u64,
}

#[derive(Default)]
struct Log {
    /// Newest first.
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

/// The server's users, the ACL log and the denial counters.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    default: Arc<User>,
    /// The default user is on and nopass: connections need no AUTH.
    default_open: AtomicBool,
    meta: Meta,
    log: Mutex<Log>,
    /// INFO acl_access_denied_{auth,cmd,key,channel}.
    pub denied: [AtomicU64; 4],
    /// requirepass as last applied to the default user.
    requirepass: Mutex<Option<String>>,
}

impl Acl {
    /// The ACL state of a fresh server: only the default user, with
    /// every right and no password (`requirepass` is applied by
    /// [`Acl::sync_config`]).
    pub fn new(t: &CommandTable) -> Acl {
        let p = default_perms(t);
        let default = User::new("default", p);
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            default_open: AtomicBool::new(true),
            meta: Meta::new(t),
            log: Mutex::new(Log::default()),
            denied: Default::default(),
            requirepass: Mutex::new(None),
        }
    }

    /// The default user.
    pub fn default_user(&self) -> Arc<User> {
        self.default.clone()
    }

    /// Whether a connection that did not AUTH may run commands (Redis's
    /// authRequired, negated).
    #[inline]
    pub fn default_open(&self) -> bool {
        self.default_open.load(Ordering::Relaxed)
    }

    fn update_default_open(&self) {
        let p = self.default.perms();
        self.default_open
            .store(p.flags & NOPASS != 0 && p.enabled(), Ordering::Relaxed);
    }

    /// Looks a user up by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        self.users.read().get(name).cloned()
    }

    /// Names of every user, sorted.
    pub fn names(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    /// Applies CONFIG changes that concern users: `requirepass` sets or
    /// clears the default user's password, as Redis's
    /// ACLUpdateDefaultUserPassword.
    pub fn sync_config(&self, srv: &crate::server::Server, t: &CommandTable) {
        let pass = srv.config.str_of(crate::config::HOT.requirepass);
        let mut last = self.requirepass.lock();
        if last.as_deref() == Some(pass.as_str()) {
            return;
        }
        let first = last.is_none();
        *last = Some(pass.clone());
        if first && pass.is_empty() {
            return;
        }
        let mut p = (*self.default.perms()).clone();
        let _ = p.apply(t, b"resetpass", false);
        if pass.is_empty() {
            let _ = p.apply(t, b"nopass", false);
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = p.apply(t, &op, false);
        }
        self.default.replace(p);
        self.update_default_open();
    }

    /// Checks a username/password pair (Redis's ACLCheckUserCredentials).
    pub fn credentials(&self, user: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let u = self.user(user)?;
        let p = u.perms();
        (p.enabled() && p.password_ok(pass)).then_some(u)
    }

    /// ACL SETUSER: applies every rule to a copy of the user (a new one
    /// when it does not exist); nothing changes unless all apply.
    pub fn set_user(
        &self,
        srv: &crate::server::Server,
        name: &[u8],
        args: &[&[u8]],
    ) -> Result<(), String> {
        let t = &srv.commands;
        let pubsub_all = pubsub_default_all(srv);
        let merged = merge_selector_args(args).map_err(|i| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(args[i])
            )
        })?;
        let name = String::from_utf8_lossy(name).into_owned();
        let existing = self.users.read().get(&name).cloned();
        let mut p = match &existing {
            Some(u) => (*u.perms()).clone(),
            None => Perms::new(t.cmds.len(), pubsub_all),
        };
        for op in &merged {
            p.apply(t, op, pubsub_all).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.text()
                )
            })?;
        }
        match existing {
            Some(u) => {
                let old = u.perms();
                u.replace(p.clone());
                kill_pubsub_if_needed(srv, &u, &old, &p);
                if Arc::ptr_eq(&u, &self.default) {
                    self.update_default_open();
                }
            }
            None => {
                self.users.write().insert(name.clone(), User::new(&name, p));
                GEN.fetch_add(1, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Removes users; returns those that existed.
    pub fn del_users(&self, names: &[&[u8]]) -> Vec<Arc<User>> {
        let mut out = Vec::new();
        let mut users = self.users.write();
        for n in names {
            if let Some(u) = users.remove(String::from_utf8_lossy(n).as_ref()) {
                u.deleted.store(true, Ordering::Relaxed);
                out.push(u);
            }
        }
        GEN.fetch_add(1, Ordering::Release);
        out
    }

    /// `user <name> <rules>` lines for ACL LIST and ACL SAVE.
    pub fn list(&self) -> Vec<Vec<u8>> {
        self.users
            .read()
            .values()
            .map(|u| {
                let mut l = format!("user {} ", u.name).into_bytes();
                l.extend(u.perms().describe());
                l
            })
            .collect()
    }

    /// Records a denial in the ACL log and the INFO counters (Redis's
    /// addACLLogEntry).
    #[allow(clippy::too_many_arguments)]
    pub fn log_denial(
        &self,
        srv: &crate::server::Server,
        denied: Denied,
        context: LogCtx,
        object: &[u8],
        username: &str,
        cinfo: String,
    ) {
        let slot = match denied {
            Denied::Auth => 0,
            Denied::Cmd => 1,
            Denied::Key(_) => 2,
            Denied::Channel(_) => 3,
        };
        self.denied[slot].fetch_add(1, Ordering::Relaxed);
        let now = crate::server::now_ms();
        let max = srv.config.get_num("acllog-max-len").max(0) as usize;
        let mut log = self.log.lock();
        let reason = denied.reason();
        let found = log.entries.iter().take(10).position(|e| {
            e.reason == reason
                && e.context == context
                && e.ctime.abs_diff(now) <= 60_000
                && e.object == object
                && e.username == username
        });
        if let Some(i) = found {
            let mut e = log.entries.remove(i).expect("found");
            e.cinfo = cinfo;
            e.ctime = now;
            e.count += 1;
            log.entries.push_front(e);
            return;
        }
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object: object.to_vec(),
            username: username.to_string(),
            ctime: now,
            cinfo,
            entry_id: id,
            created: now,
        });
        log.entries.truncate(max);
    }

    /// The newest `n` log entries.
    pub fn log_entries(&self, n: usize) -> Vec<LogEntry> {
        self.log.lock().entries.iter().take(n).cloned().collect()
    }

    /// ACL LOG RESET.
    pub fn log_reset(&self) {
        self.log.lock().entries.clear();
    }

    /// Checks `cmd` for a user without running it (ACL DRYRUN,
    /// `redis.acl_check_cmd`).
    pub fn check_user(&self, user: &User, cmd: &Command, argv: &[&[u8]]) -> Result<(), Denied> {
        let p = user.perms();
        if user.deleted.load(Ordering::Relaxed) {
            return Err(Denied::Cmd);
        }
        check_perms(&self.meta, &p, cmd, argv)
    }

    /// Whether one selector of `user` allows `cmd` and grants `need`
    /// (READ/WRITE) on every key (`~*`, `%R~*`, allkeys).
    pub fn check_user_all_keys(
        &self,
        user: &User,
        cmd: &Command,
        argv: &[&[u8]],
        need: u8,
    ) -> bool {
        let p = user.perms();
        let mut cache = None;
        p.selectors.iter().any(|s| {
            selector_check(&self.meta, s, cmd, argv, &mut cache).is_ok()
                && (s.allkeys
                    || s.patterns
                        .iter()
                        .any(|(f, pat)| f & need == need && pat.as_slice() == b"*"))
        })
    }

    /// Loads users from `user` config lines and the ACL file at startup
    /// (Redis's ACLLoadUsersAtStartup).
    pub fn load_at_startup(&self, srv: &crate::server::Server) -> Result<(), String> {
        let lines = srv.config.user_lines.lock().clone();
        let aclfile = srv.config.get_str("aclfile");
        if !aclfile.is_empty() && !lines.is_empty() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        let t = &srv.commands;
        let pubsub_all = pubsub_default_all(srv);
        let mut seen: Vec<&str> = Vec::new();
        for words in &lines {
            let name = words[0].as_str();
            if seen.contains(&name) {
                return Err(format!(
                    "Error in user declaration '{name}': {}",
                    RuleError::Already.text()
                ));
            }
            seen.push(name);
            if has_spaces(name.as_bytes()) {
                return Err("Spaces not allowed in ACL usernames".into());
            }
            let args: Vec<&[u8]> = words[1..].iter().map(|w| w.as_bytes()).collect();
            let merged = merge_selector_args(&args)
                .map_err(|_| format!("Unmatched parenthesis in user '{name}'"))?;
            let mut p = if name == "default" {
                let mut p = (*self.default.perms()).clone();
                let _ = p.apply(t, b"reset", pubsub_all);
                p
            } else {
                Perms::new(t.cmds.len(), pubsub_all)
            };
            for op in &merged {
                p.apply(t, op, pubsub_all).map_err(|e| {
                    format!(
                        "Error loading ACL rule '{}' for the user named '{name}': {}",
                        String::from_utf8_lossy(op),
                        e.text()
                    )
                })?;
            }
            if name == "default" {
                self.default.replace(p);
            } else {
                self.users
                    .write()
                    .insert(name.to_string(), User::new(name, p));
            }
        }
        self.update_default_open();
        if !aclfile.is_empty() {
            self.load_file(srv, &aclfile, 0)
                .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        }
        GEN.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Reads the ACL file and replaces every user with its contents, or
    /// changes nothing and returns the errors found (Redis's
    /// ACLLoadFromFile). Connections of replaced users are closed.
    pub fn load_file(
        &self,
        srv: &crate::server::Server,
        path: &str,
        me: u64,
    ) -> Result<Vec<Arc<User>>, String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "Error loading ACLs, opening file '{path}': {}",
                io_error_text(&e)
            )
        })?;
        let t = &srv.commands;
        let pubsub_all = pubsub_default_all(srv);
        let mut errors = String::new();
        let mut new: BTreeMap<String, Perms> = BTreeMap::new();
        for (i, line) in text.split(|&c| c == b'\n').enumerate() {
            let n = i + 1;
            let line = trim(line, b" \t\r\n");
            if line.is_empty() {
                continue;
            }
            let words: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
            if words[0] != b"user" || words.len() < 2 {
                errors.push_str(&format!(
                    "{path}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = String::from_utf8_lossy(words[1]).into_owned();
            if has_spaces(words[1]) {
                errors.push_str(&format!(
                    "'{path}:{n}: username '{name}' contains invalid characters. "
                ));
                continue;
            }
            if new.contains_key(&name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {n}. "
                ));
                continue;
            }
            let mut p = Perms::new(t.cmds.len(), pubsub_all);
            let merged = match merge_selector_args(&words[2..]) {
                Ok(m) => m,
                Err(_) => {
                    errors.push_str(&format!(
                        "{path}:{n}: Unmatched parenthesis in selector definition."
                    ));
                    Vec::new()
                }
            };
            let mut syntax_error = false;
            for op in &merged {
                let op = trim(op, b"\t\r\n");
                if let Err(e) = p.apply(t, op, pubsub_all) {
                    if e == RuleError::NoEnt {
                        errors.push_str(&format!(
                            "{path}:{n}: Error in applying operation '{}': {}. ",
                            String::from_utf8_lossy(op),
                            e.text()
                        ));
                    } else if !syntax_error {
                        errors.push_str(&format!("{path}:{n}: {}. ", e.text()));
                        syntax_error = true;
                    }
                }
            }
            new.insert(name, p);
        }
        if !errors.is_empty() {
            errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
            return Err(errors);
        }
        let default_perms = new.remove("default").unwrap_or_else(|| default_perms(t));
        let old: Vec<Arc<User>> = {
            let mut users = self.users.write();
            let old: Vec<Arc<User>> = users
                .values()
                .filter(|u| !Arc::ptr_eq(u, &self.default))
                .cloned()
                .collect();
            users.retain(|_, u| Arc::ptr_eq(u, &self.default));
            for (name, p) in new {
                users.insert(name.clone(), User::new(&name, p));
            }
            old
        };
        for u in &old {
            u.deleted.store(true, Ordering::Relaxed);
        }
        self.default.replace(default_perms);
        self.update_default_open();
        kill_clients_of(srv, &old, me);
        Ok(old)
    }

    /// Writes every user to the ACL file (temp file, fsync, rename).
    pub fn save_file(&self, path: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut text = Vec::new();
        for l in self.list() {
            text.extend(l);
            text.push(b'\n');
        }
        let tmp = format!(
            "{path}.tmp-{}-{}",
            std::process::id(),
            crate::server::now_ms()
        );
        let r = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

fn io_error_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

fn trim<'a>(mut s: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let Some((f, rest)) = s.split_first() {
        if !set.contains(f) {
            break;
        }
        s = rest;
    }
    while let Some((l, rest)) = s.split_last() {
        if !set.contains(l) {
            break;
        }
        s = rest;
    }
    s
}

fn default_perms(t: &CommandTable) -> Perms {
    let mut p = Perms::new(t.cmds.len(), false);
    for op in ["+@all", "~*", "&*", "on", "nopass"] {
        let _ = p.apply(t, op.as_bytes(), false);
    }
    p
}

fn pubsub_default_all(srv: &crate::server::Server) -> bool {
    srv.config.get_str("acl-pubsub-default") == "allchannels"
}

/// Joins selector rules spread over several arguments (`(+get` `~k)`)
/// into one, as Redis's ACLMergeSelectorArguments; Err is the index of an
/// unclosed `(`.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().expect("open").1);
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        if op.len() == 1 && op[0] == b'(' {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// Closes the connections of users that ACL DELUSER or ACL LOAD removed.
/// The calling client is closed after its reply (set by the caller).
pub fn kill_clients_of(srv: &crate::server::Server, users: &[Arc<User>], skip: u64) {
    if users.is_empty() {
        return;
    }
    let targets: Vec<_> = srv
        .clients
        .lock()
        .values()
        .filter(|h| h.id != skip && users.iter().any(|u| **h.user.lock() == *u.name))
        .cloned()
        .collect();
    for h in targets {
        kill_handle(srv, &h);
    }
}

fn kill_handle(srv: &crate::server::Server, h: &crate::server::client::ClientHandle) {
    h.killed.store(true, Ordering::Relaxed);
    srv.send_to_worker(h.worker, crate::server::WorkerMsg::Kill(h.id));
}

/// Redis's ACLKillPubsubClientsIfNeeded: after a change that narrowed a
/// user's channels, closes its subscribers holding a channel or pattern
/// the new rules no longer allow.
fn kill_pubsub_if_needed(srv: &crate::server::Server, u: &User, old: &Perms, new: &Perms) {
    if new.selectors.iter().any(|s| s.allchannels) {
        return;
    }
    let upcoming: Vec<Vec<u8>> = new
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let superset = old
        .selectors
        .iter()
        .all(|s| !s.allchannels && s.channels.iter().all(|c| upcoming.contains(c)));
    if superset {
        return;
    }
    let handles: Vec<_> = srv
        .clients
        .lock()
        .values()
        .filter(|h| *h.user.lock().as_ref() == *u.name.as_str())
        .cloned()
        .collect();
    if handles.is_empty() {
        return;
    }
    let ids: Vec<u64> = handles.iter().map(|h| h.id).collect();
    let subs = srv.pubsub.subscriptions_of(&ids);
    for h in handles {
        let bad = subs.iter().any(|(id, kind, name)| {
            *id == h.id
                && !channel_ok(
                    &upcoming,
                    name,
                    *kind == crate::commands::pubsub::Kind::Pattern,
                )
        });
        if bad {
            kill_handle(srv, &h);
        }
    }
}

/// The NOPERM message of a denial (Redis's getAclErrorMessage).
pub fn error_message(
    d: Denied,
    user: &str,
    cmd: &Command,
    argv: &[&[u8]],
    verbose: bool,
) -> String {
    match d {
        Denied::Cmd | Denied::Auth => format!(
            "User {user} has no permissions to run the '{}' command",
            cmd.name
        ),
        Denied::Key(p) if verbose => format!(
            "User {user} has no permissions to access the '{}' key",
            String::from_utf8_lossy(argv[p])
        ),
        Denied::Channel(p) if verbose => format!(
            "User {user} has no permissions to access the '{}' channel",
            String::from_utf8_lossy(argv[p])
        ),
        Denied::Key(_) => "No permissions to access a key".into(),
        Denied::Channel(_) => "No permissions to access a channel".into(),
    }
}

/// Checks a client's command against its user; a denial is logged (ACL
/// LOG, INFO counters) before it is returned.
pub fn check_client(
    ctx: &mut crate::commands::Ctx,
    cmd: &Command,
    argv: &[&[u8]],
    context: LogCtx,
) -> Result<(), Denied> {
    let Some(p) = ctx.client.acl.perms() else {
        return Ok(());
    };
    let srv = ctx.srv;
    check_perms(&srv.acl.meta, &p, cmd, argv).inspect_err(|&d| {
        let object: &[u8] = match d {
            Denied::Key(i) | Denied::Channel(i) => argv[i],
            _ => cmd.name.as_bytes(),
        };
        let user = ctx.client.acl.name().to_string();
        let cinfo = ctx.client.handle.info_line(ctx.now_ms, &srv.commands);
        srv.acl.log_denial(srv, d, context, object, &user, cinfo);
    })
}

/// The dispatcher's NOPERM reply for a denial.
pub fn noperm(ctx: &crate::commands::Ctx, d: Denied, cmd: &Command, argv: &[&[u8]]) -> String {
    format!(
        "NOPERM {}",
        error_message(d, ctx.client.acl.name(), cmd, argv, false)
    )
}

/// What ACL GETUSER shows of a user.
pub struct UserView {
    pub flags: Vec<&'static str>,
    pub passwords: Vec<String>,
    /// (commands, keys, channels) per selector, the root first.
    pub selectors: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// A user as ACL GETUSER describes it.
pub fn describe_for_getuser(u: &User) -> UserView {
    let p = u.perms();
    UserView {
        flags: USER_FLAG_NAMES
            .iter()
            .filter(|(f, _)| p.flags & f != 0)
            .map(|(_, n)| *n)
            .collect(),
        passwords: p.passwords.clone(),
        selectors: p
            .selectors
            .iter()
            .map(|s| {
                (
                    s.describe_commands(),
                    s.describe_keys(" "),
                    s.describe_channels(),
                )
            })
            .collect(),
    }
}

impl LogEntry {
    /// The `context` field's text.
    pub fn context_name(&self) -> &'static str {
        self.context.name()
    }
}

/// Logs in `ctx`'s client as `user` with `pass` (AUTH, HELLO AUTH): on
/// success the connection acts as that user; a failure is logged.
pub fn authenticate(
    ctx: &mut crate::commands::Ctx,
    argv0: &[u8],
    user: &[u8],
    pass: &[u8],
) -> bool {
    let srv = ctx.srv;
    match srv.acl.credentials(user, pass) {
        Some(u) => {
            *ctx.client.handle.user.lock() = Arc::from(u.name.as_str());
            ctx.client.acl = ClientAcl::of(u);
            ctx.client.authenticated = true;
            true
        }
        None => {
            let context = if ctx.client.multi.is_some() {
                LogCtx::Multi
            } else {
                LogCtx::Toplevel
            };
            let cinfo = ctx.client.handle.info_line(ctx.now_ms, &srv.commands);
            srv.acl.log_denial(
                srv,
                Denied::Auth,
                context,
                argv0,
                &String::from_utf8_lossy(user),
                cinfo,
            );
            false
        }
    }
}

/// Puts a client back on the default user, authenticated only when the
/// default user needs no password (connect, RESET).
pub fn set_default_auth(srv: &crate::server::Server, client: &mut crate::server::client::Client) {
    client.acl = ClientAcl::of(srv.acl.default_user());
    *client.handle.user.lock() = Arc::from("default");
    client.authenticated = srv.acl.default_open();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CommandTable {
        CommandTable::build()
    }

    fn apply_all(t: &CommandTable, p: &mut Perms, ops: &[&str]) {
        for op in ops {
            p.apply(t, op.as_bytes(), false).unwrap();
        }
    }

    #[test]
    fn rules_compact_like_redis() {
        let t = table();
        let mut p = Perms::new(t.cmds.len(), false);
        apply_all(&t, &mut p, &["+@all", "-@hash", "-@slow", "+hget"]);
        assert_eq!(
            p.selectors[0].describe_commands(),
            "+@all -@hash -@slow +hget"
        );
        apply_all(&t, &mut p, &["-@hash"]);
        assert_eq!(
            p.selectors[0].describe_commands(),
            "+@all -@slow +hget -@hash"
        );
        apply_all(
            &t,
            &mut p,
            &[
                "-@all",
                "+client|list",
                "+client|list",
                "+config|get",
                "+config",
                "+acl|list",
                "-acl",
            ],
        );
        assert_eq!(
            p.selectors[0].describe_commands(),
            "-@all +client|list +config -acl"
        );
        apply_all(
            &t,
            &mut p,
            &[
                "-@all",
                "+select|0",
                "+select|0",
                "+debug|segfault",
                "+debug",
            ],
        );
        assert_eq!(p.selectors[0].describe_commands(), "-@all +select|0 +debug");
    }

    #[test]
    fn errors_and_passwords() {
        let t = table();
        let mut p = Perms::new(t.cmds.len(), false);
        assert_eq!(p.apply(&t, b"+config|get|x", false), Err(RuleError::Child));
        assert_eq!(p.apply(&t, b"+config|asdf", false), Err(RuleError::NoEnt));
        assert_eq!(p.apply(&t, b"-select|0", false), Err(RuleError::NoEnt));
        assert_eq!(p.apply(&t, b"#abc", false), Err(RuleError::BadMsg));
        assert_eq!(p.apply(&t, b"<nope", false), Err(RuleError::NoDev));
        p.apply(&t, b">secret", false).unwrap();
        assert!(p.password_ok(b"secret") && !p.password_ok(b"other"));
        assert_eq!(
            hash_password(b"passwd4"),
            "34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6"
        );
        p.apply(&t, b"allkeys", false).unwrap();
        assert_eq!(p.apply(&t, b"~foo", false), Err(RuleError::Exist));
    }

    #[test]
    fn describe_new_and_default_user() {
        let t = table();
        let p = Perms::new(t.cmds.len(), false);
        assert_eq!(
            String::from_utf8(p.describe()).unwrap(),
            "off sanitize-payload resetchannels -@all"
        );
        let d = default_perms(&t);
        assert_eq!(
            String::from_utf8(d.describe()).unwrap(),
            "on nopass sanitize-payload ~* &* +@all"
        );
        assert!(d.unrestricted);
    }

    #[test]
    fn selector_checks() {
        let t = table();
        let meta = Meta::new(&t);
        let mut p = Perms::new(t.cmds.len(), false);
        apply_all(
            &t,
            &mut p,
            &["on", "(+@write ~write::*)", "(+@read ~read::*)"],
        );
        let set = t.lookup(b"set").unwrap();
        let get = t.lookup(b"get").unwrap();
        assert!(check_perms(&meta, &p, set, &[b"set", b"write::a", b"v"]).is_ok());
        assert_eq!(
            check_perms(&meta, &p, get, &[b"get", b"write::a"]),
            Err(Denied::Key(1))
        );
        let mut q = Perms::new(t.cmds.len(), false);
        apply_all(&t, &mut q, &["+@all", "%W~write*"]);
        assert!(check_perms(&meta, &q, set, &[b"set", b"writestr", b"v"]).is_ok());
        assert!(check_perms(&meta, &q, set, &[b"set", b"writestr", b"v", b"get"]).is_err());
        let copy = t.lookup(b"copy").unwrap();
        let mut r = Perms::new(t.cmds.len(), false);
        apply_all(&t, &mut r, &["+@all", "%R~read*", "%W~write*"]);
        assert!(check_perms(&meta, &r, copy, &[b"copy", b"read", b"write"]).is_ok());
        assert!(check_perms(&meta, &r, copy, &[b"copy", b"write", b"read"]).is_err());
    }

    /// Redis checks that a user's description rebuilds the same command
    /// bitmap (ACLDescribeSelectorCommandRules): so do we, over rule sets
    /// that exercise the compaction.
    #[test]
    fn description_rebuilds_the_same_permissions() {
        let t = table();
        let sets: &[&[&str]] = &[
            &["+@all", "-@hash", "-@slow", "+hget"],
            &[
                "-@all",
                "+client|list",
                "+config|get",
                "+config",
                "+acl|list",
                "-acl",
            ],
            &[
                "+@all",
                "-config",
                "+config|get",
                "-@dangerous",
                "+debug|object",
            ],
            &["-@all", "+select|0", "+@set", "-sadd", "+@read", "-client"],
            &[
                "+@all",
                "-@all",
                "+@string",
                "-incr",
                "+debug|digest",
                "+debug|segfault",
            ],
            &["allcommands", "-memory|doctor", "+memory", "-memory|stats"],
        ];
        for ops in sets {
            let mut p = Perms::new(t.cmds.len(), false);
            apply_all(&t, &mut p, ops);
            let desc = p.selectors[0].describe_commands();
            let mut q = Perms::new(t.cmds.len(), false);
            for op in desc.split(' ') {
                q.apply(&t, op.as_bytes(), false).unwrap();
            }
            assert_eq!(
                p.selectors[0].bits, q.selectors[0].bits,
                "{ops:?} -> {desc}"
            );
            assert_eq!(
                p.selectors[0].describe_commands(),
                q.selectors[0].describe_commands()
            );
        }
    }

    #[test]
    fn merge_selectors() {
        let a: Vec<&[u8]> = vec![b"(+PING", b"(+SELECT", b"(+DEL", b")", b")"];
        let m = merge_selector_args(&a).unwrap();
        assert_eq!(m[0], b"(+PING (+SELECT (+DEL )".to_vec());
        assert_eq!(merge_selector_args(&[b"(+a", b"b"]), Err(0));
    }
}
