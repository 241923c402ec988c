//! Redis 7.2's key specifications: for each command with keys, the
//! flags of each group of keys (RO/RW/OW/RM and access/update/insert/
//! delete) and how to find them (begin search, find keys). COMMAND INFO
//! prints them and COMMAND GETKEYSANDFLAGS uses them to give each key its
//! flags, the way Redis's `getKeysUsingKeySpecs` does.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Key flag bits, in the order Redis prints them.
pub mod kf {
    pub const RO: u32 = 1;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;
    /// (bit, name in the spec text, name Redis replies with).
    pub const NAMES: [(u32, &str, &str); 11] = [
        (RO, "RO", "RO"),
        (RW, "RW", "RW"),
        (OW, "OW", "OW"),
        (RM, "RM", "RM"),
        (ACCESS, "ACCESS", "access"),
        (UPDATE, "UPDATE", "update"),
        (INSERT, "INSERT", "insert"),
        (DELETE, "DELETE", "delete"),
        (NOT_KEY, "NOT_KEY", "not_key"),
        (INCOMPLETE, "INCOMPLETE", "incomplete"),
        (VARIABLE_FLAGS, "VARIABLE_FLAGS", "variable_flags"),
    ];
}

/// Where the search for a spec's keys begins.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// At a fixed argument index.
    Index(i32),
    /// After a keyword, searched from `startfrom` (negative: backwards
    /// from the end).
    Keyword(String, i32),
    /// Only the command's own key finder knows.
    Unknown,
}

/// How a spec's keys are found from where the search began.
#[derive(Debug, Clone, PartialEq)]
pub enum Find {
    Range {
        lastkey: i32,
        step: i32,
        limit: i32,
    },
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        step: i32,
    },
    Unknown,
}

/// One key specification.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Redis's remark on the spec (COMMAND INFO's `notes`).
    pub notes: Option<&'static str>,
    pub flags: u32,
    pub begin: Begin,
    pub find: Find,
}

/// Redis's key flag names for `flags` (as COMMAND replies them).
pub fn flag_names(flags: u32) -> Vec<&'static str> {
    kf::NAMES
        .iter()
        .filter(|(b, _, _)| flags & b != 0)
        .map(|(_, _, n)| *n)
        .collect()
}

/// The key specs of a command (`name` or `parent|sub`, lowercase).
pub fn specs(name: &str) -> &'static [Spec] {
    static MAP: OnceLock<HashMap<&'static str, Vec<Spec>>> = OnceLock::new();
    MAP.get_or_init(parse)
        .get(name)
        .map_or(&[], |v| v.as_slice())
}

fn parse() -> HashMap<&'static str, Vec<Spec>> {
    let mut m = HashMap::new();
    for line in SPECS.lines() {
        let (name, rest) = line.rsplit_once('|').expect("name|specs");
        let specs = rest.split(';').map(parse_spec).collect();
        m.insert(name, specs);
    }
    m
}

fn parse_spec(s: &'static str) -> Spec {
    let (s, notes) = match s.split_once('#') {
        Some((a, n)) => (a, Some(n)),
        None => (s, None),
    };
    let mut w = s.split(' ');
    let (fl, b, f) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
    let flags = fl
        .split(',')
        .map(|n| kf::NAMES.iter().find(|x| x.1 == n).expect("flag").0)
        .fold(0, |a, b| a | b);
    let num = |x: &str| x.parse::<i32>().expect("number");
    let bp: Vec<&str> = b.split(':').collect();
    let begin = match bp[0] {
        "i" => Begin::Index(num(bp[1])),
        "k" => Begin::Keyword(bp[1].to_string(), num(bp[2])),
        _ => Begin::Unknown,
    };
    let fp: Vec<&str> = f.split(':').collect();
    let find = match fp[0] {
        "r" => Find::Range {
            lastkey: num(fp[1]),
            step: num(fp[2]),
            limit: num(fp[3]),
        },
        "n" => Find::Keynum {
            keynumidx: num(fp[1]),
            firstkey: num(fp[2]),
            step: num(fp[3]),
        },
        _ => Find::Unknown,
    };
    Spec {
        notes,
        flags,
        begin,
        find,
    }
}

/// The argument positions one spec covers in `argv` (Redis's
/// getKeysUsingKeySpecs for a single spec), or None when the spec cannot
/// be resolved (unknown search, keyword absent, bad key count).
fn spec_positions(sp: &Spec, argv: &[&[u8]]) -> Option<Vec<usize>> {
    let argc = argv.len() as i64;
    let first = match &sp.begin {
        Begin::Index(p) => *p as i64,
        Begin::Keyword(kw, from) => {
            let from = *from as i64;
            let (start, end) = if from > 0 {
                (from, argc - 1)
            } else {
                (argc + from, 1)
            };
            let mut i = start;
            let mut found = 0;
            loop {
                if i >= argc || i < 1 {
                    break;
                }
                if argv[i as usize].eq_ignore_ascii_case(kw.as_bytes()) {
                    found = i + 1;
                    break;
                }
                if i == end {
                    break;
                }
                i = if start <= end { i + 1 } else { i - 1 };
            }
            if found == 0 {
                return None;
            }
            found
        }
        Begin::Unknown => return None,
    };
    let (first, last, step) = match sp.find {
        Find::Range {
            lastkey,
            step,
            limit,
        } => {
            let last = if lastkey >= 0 {
                first + lastkey as i64
            } else if limit == 0 {
                argc + lastkey as i64
            } else {
                first + ((argc - first) / limit as i64 + lastkey as i64)
            };
            (first, last, step as i64)
        }
        Find::Keynum {
            keynumidx,
            firstkey,
            step,
        } => {
            let at = first + keynumidx as i64;
            if at >= argc {
                return None;
            }
            let n = strutil::parse_i64(argv[at as usize]).filter(|&n| n >= 0)?;
            let first = first + firstkey as i64;
            (first, first + n - 1, step as i64)
        }
        Find::Unknown => return None,
    };
    if last >= argc || last < first || first >= argc {
        return None;
    }
    Some(
        (first..=last)
            .step_by(step.max(1) as usize)
            .map(|i| i as usize)
            .collect(),
    )
}

/// The key flags of each key position in `positions` (from the command's
/// key finder), for COMMAND GETKEYSANDFLAGS. A position takes the flags of
/// the first spec that covers it; keys no resolvable spec covers take the
/// last unresolvable one (SORT's STORE key).
/// SET and BITFIELD compute theirs from the arguments, as Redis does.
pub fn key_flags(name: &str, argv: &[&[u8]], positions: &[usize]) -> Vec<u32> {
    let specs = specs(name);
    let variable = match name {
        "set" => Some(
            if argv[3.min(argv.len())..]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"get"))
            {
                kf::RW | kf::ACCESS | kf::UPDATE
            } else {
                kf::OW | kf::UPDATE
            },
        ),
        "bitfield" => Some(if bitfield_readonly(argv) {
            kf::RO | kf::ACCESS
        } else {
            kf::RW | kf::ACCESS | kf::UPDATE
        }),
        _ => None,
    };
    if let Some(f) = variable {
        return vec![f; positions.len()];
    }
    let mut by_pos: HashMap<usize, u32> = HashMap::new();
    let mut unresolved = Vec::new();
    for sp in specs.iter().filter(|s| s.flags & kf::NOT_KEY == 0) {
        match spec_positions(sp, argv) {
            Some(ps) => {
                for p in ps {
                    by_pos.entry(p).or_insert(sp.flags);
                }
            }
            None => unresolved.push(sp.flags),
        }
    }
    // Only SORT has unresolvable specs among Redis's commands: the key
    // its finder adds beyond the first is the STORE destination, which
    // is the last spec.
    let fallback = unresolved
        .last()
        .or(specs.first().map(|s| &s.flags))
        .copied()
        .unwrap_or(0);
    positions
        .iter()
        .map(|p| by_pos.get(p).copied().unwrap_or(fallback))
        .map(|f| f & !kf::INCOMPLETE)
        .collect()
}

/// Redis's bitfieldGetKeys: only GET (and OVERFLOW) subcommands make the
/// key read-only.
fn bitfield_readonly(argv: &[&[u8]]) -> bool {
    let mut i = 2;
    while i < argv.len() {
        let rem = argv.len() - i - 1;
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"get") && rem >= 2 {
            i += 2;
        } else if (a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby")) && rem >= 3
        {
            return false;
        } else if a.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            i += 1;
        } else {
            return false;
        }
        i += 1;
    }
    true
}

/// `name|flags begin find;...`: begin is `i:POS`, `k:KEYWORD:STARTFROM`
/// or `u`; find is `r:LASTKEY:STEP:LIMIT`, `n:KEYNUMIDX:FIRSTKEY:STEP` or
/// `u` (unknown); `#text` ends a spec with its notes. Transcribed from Redis 7.2's command reference.
const SPECS: &str = "\
append|RW,INSERT i:1 r:0:1:0
bitcount|RO,ACCESS i:1 r:0:1:0
bitfield_ro|RO,ACCESS i:1 r:0:1:0
bitfield|RW,UPDATE,ACCESS,VARIABLE_FLAGS i:1 r:0:1:0#This command allows both access and modification of the key
bitop|OW,UPDATE i:2 r:0:1:0;RO,ACCESS i:3 r:-1:1:0
bitpos|RO,ACCESS i:1 r:0:1:0
blmove|RW,ACCESS,DELETE i:1 r:0:1:0;RW,INSERT i:2 r:0:1:0
blmpop|RW,ACCESS,DELETE i:2 n:0:1:1
blpop|RW,ACCESS,DELETE i:1 r:-2:1:0
brpoplpush|RW,ACCESS,DELETE i:1 r:0:1:0;RW,INSERT i:2 r:0:1:0
brpop|RW,ACCESS,DELETE i:1 r:-2:1:0
bzmpop|RW,ACCESS,DELETE i:2 n:0:1:1
bzpopmax|RW,ACCESS,DELETE i:1 r:-2:1:0
bzpopmin|RW,ACCESS,DELETE i:1 r:-2:1:0
copy|RO,ACCESS i:1 r:0:1:0;OW,UPDATE i:2 r:0:1:0
decrby|RW,ACCESS,UPDATE i:1 r:0:1:0
decr|RW,ACCESS,UPDATE i:1 r:0:1:0
del|RM,DELETE i:1 r:-1:1:0
dump|RO,ACCESS i:1 r:0:1:0
eval_ro|RO,ACCESS i:2 n:0:1:1#We cannot tell how the keys will be used so we assume the worst, RO and ACCESS
evalsha_ro|RO,ACCESS i:2 n:0:1:1
evalsha|RW,ACCESS,UPDATE i:2 n:0:1:1
eval|RW,ACCESS,UPDATE i:2 n:0:1:1#We cannot tell how the keys will be used so we assume the worst, RW and UPDATE
exists|RO i:1 r:-1:1:0
expireat|RW,UPDATE i:1 r:0:1:0
expiretime|RO,ACCESS i:1 r:0:1:0
expire|RW,UPDATE i:1 r:0:1:0
fcall_ro|RO,ACCESS i:2 n:0:1:1#We cannot tell how the keys will be used so we assume the worst, RO and ACCESS
fcall|RW,ACCESS,UPDATE i:2 n:0:1:1#We cannot tell how the keys will be used so we assume the worst, RW and UPDATE
geoadd|RW,UPDATE i:1 r:0:1:0
geodist|RO,ACCESS i:1 r:0:1:0
geohash|RO,ACCESS i:1 r:0:1:0
geopos|RO,ACCESS i:1 r:0:1:0
georadius_ro|RO,ACCESS i:1 r:0:1:0
georadiusbymember_ro|RO,ACCESS i:1 r:0:1:0
georadiusbymember|RO,ACCESS i:1 r:0:1:0;OW,UPDATE k:STORE:5 r:0:1:0;OW,UPDATE k:STOREDIST:5 r:0:1:0
georadius|RO,ACCESS i:1 r:0:1:0;OW,UPDATE k:STORE:6 r:0:1:0;OW,UPDATE k:STOREDIST:6 r:0:1:0
geosearchstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 r:0:1:0
geosearch|RO,ACCESS i:1 r:0:1:0
getbit|RO,ACCESS i:1 r:0:1:0
getdel|RW,ACCESS,DELETE i:1 r:0:1:0
getex|RW,ACCESS,UPDATE i:1 r:0:1:0#RW and UPDATE because it changes the TTL
getrange|RO,ACCESS i:1 r:0:1:0
getset|RW,ACCESS,UPDATE i:1 r:0:1:0
get|RO,ACCESS i:1 r:0:1:0
hdel|RW,DELETE i:1 r:0:1:0
hexists|RO i:1 r:0:1:0
hgetall|RO,ACCESS i:1 r:0:1:0
hget|RO,ACCESS i:1 r:0:1:0
hincrbyfloat|RW,ACCESS,UPDATE i:1 r:0:1:0
hincrby|RW,ACCESS,UPDATE i:1 r:0:1:0
hkeys|RO,ACCESS i:1 r:0:1:0
hlen|RO i:1 r:0:1:0
hmget|RO,ACCESS i:1 r:0:1:0
hmset|RW,UPDATE i:1 r:0:1:0
hrandfield|RO,ACCESS i:1 r:0:1:0
hscan|RO,ACCESS i:1 r:0:1:0
hsetnx|RW,INSERT i:1 r:0:1:0
hset|RW,UPDATE i:1 r:0:1:0
hstrlen|RO i:1 r:0:1:0
hvals|RO,ACCESS i:1 r:0:1:0
incrbyfloat|RW,ACCESS,UPDATE i:1 r:0:1:0
incrby|RW,ACCESS,UPDATE i:1 r:0:1:0
incr|RW,ACCESS,UPDATE i:1 r:0:1:0
lcs|RO,ACCESS i:1 r:1:1:0
lindex|RO,ACCESS i:1 r:0:1:0
linsert|RW,INSERT i:1 r:0:1:0
llen|RO i:1 r:0:1:0
lmove|RW,ACCESS,DELETE i:1 r:0:1:0;RW,INSERT i:2 r:0:1:0
lmpop|RW,ACCESS,DELETE i:1 n:0:1:1
lpop|RW,ACCESS,DELETE i:1 r:0:1:0
lpos|RO,ACCESS i:1 r:0:1:0
lpushx|RW,INSERT i:1 r:0:1:0
lpush|RW,INSERT i:1 r:0:1:0
lrange|RO,ACCESS i:1 r:0:1:0
lrem|RW,DELETE i:1 r:0:1:0
lset|RW,UPDATE i:1 r:0:1:0
ltrim|RW,DELETE i:1 r:0:1:0
memory|usage|RO i:2 r:0:1:0
mget|RO,ACCESS i:1 r:-1:1:0
migrate|RW,ACCESS,DELETE i:3 r:0:1:0;RW,ACCESS,DELETE,INCOMPLETE k:KEYS:-2 r:-1:1:0
move|RW,ACCESS,UPDATE i:1 r:0:1:0
msetnx|OW,INSERT i:1 r:-1:2:0
mset|OW,UPDATE i:1 r:-1:2:0
object|encoding|RO i:2 r:0:1:0
object|freq|RO i:2 r:0:1:0
object|idletime|RO i:2 r:0:1:0
object|refcount|RO i:2 r:0:1:0
persist|RW,UPDATE i:1 r:0:1:0
pexpireat|RW,UPDATE i:1 r:0:1:0
pexpiretime|RO,ACCESS i:1 r:0:1:0
pexpire|RW,UPDATE i:1 r:0:1:0
pfadd|RW,INSERT i:1 r:0:1:0
pfcount|RW,ACCESS i:1 r:-1:1:0#RW because it may change the internal representation of the key, and propagate to replicas
pfdebug|RW,ACCESS i:2 r:0:1:0
pfmerge|RW,ACCESS,INSERT i:1 r:0:1:0;RO,ACCESS i:2 r:-1:1:0
psetex|OW,UPDATE i:1 r:0:1:0
pttl|RO,ACCESS i:1 r:0:1:0
renamenx|RW,ACCESS,DELETE i:1 r:0:1:0;OW,INSERT i:2 r:0:1:0
rename|RW,ACCESS,DELETE i:1 r:0:1:0;OW,UPDATE i:2 r:0:1:0
restore-asking|OW,UPDATE i:1 r:0:1:0
restore|OW,UPDATE i:1 r:0:1:0
rpoplpush|RW,ACCESS,DELETE i:1 r:0:1:0;RW,INSERT i:2 r:0:1:0
rpop|RW,ACCESS,DELETE i:1 r:0:1:0
rpushx|RW,INSERT i:1 r:0:1:0
rpush|RW,INSERT i:1 r:0:1:0
sadd|RW,INSERT i:1 r:0:1:0
scard|RO i:1 r:0:1:0
sdiffstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 r:-1:1:0
sdiff|RO,ACCESS i:1 r:-1:1:0
setbit|RW,ACCESS,UPDATE i:1 r:0:1:0
setex|OW,UPDATE i:1 r:0:1:0
setnx|OW,INSERT i:1 r:0:1:0
setrange|RW,UPDATE i:1 r:0:1:0
set|RW,ACCESS,UPDATE,VARIABLE_FLAGS i:1 r:0:1:0#RW and ACCESS due to the optional `GET` argument
sintercard|RO,ACCESS i:1 n:0:1:1
sinterstore|RW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 r:-1:1:0
sinter|RO,ACCESS i:1 r:-1:1:0
sismember|RO i:1 r:0:1:0
smembers|RO,ACCESS i:1 r:0:1:0
smismember|RO,ACCESS i:1 r:0:1:0
smove|RW,ACCESS,DELETE i:1 r:0:1:0;RW,INSERT i:2 r:0:1:0
sort_ro|RO,ACCESS i:1 r:0:1:0;RO,ACCESS u u#For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort
sort|RO,ACCESS i:1 r:0:1:0;RO,ACCESS u u#For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort;OW,UPDATE u u#For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array
spop|RW,ACCESS,DELETE i:1 r:0:1:0
spublish|NOT_KEY i:1 r:0:1:0
srandmember|RO,ACCESS i:1 r:0:1:0
srem|RW,DELETE i:1 r:0:1:0
sscan|RO,ACCESS i:1 r:0:1:0
ssubscribe|NOT_KEY i:1 r:-1:1:0
strlen|RO i:1 r:0:1:0
substr|RO,ACCESS i:1 r:0:1:0
sunionstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 r:-1:1:0
sunion|RO,ACCESS i:1 r:-1:1:0
sunsubscribe|NOT_KEY i:1 r:-1:1:0
touch|RO i:1 r:-1:1:0
ttl|RO,ACCESS i:1 r:0:1:0
type|RO i:1 r:0:1:0
unlink|RM,DELETE i:1 r:-1:1:0
watch|RO i:1 r:-1:1:0
xack|RW,UPDATE i:1 r:0:1:0
xadd|RW,UPDATE i:1 r:0:1:0#UPDATE instead of INSERT because of the optional trimming feature
xautoclaim|RW,DELETE i:1 r:0:1:0
xclaim|RW,UPDATE i:1 r:0:1:0
xdel|RW,DELETE i:1 r:0:1:0
xgroup|createconsumer|RW,INSERT i:2 r:0:1:0
xgroup|create|RW,INSERT i:2 r:0:1:0
xgroup|delconsumer|RW,DELETE i:2 r:0:1:0
xgroup|destroy|RW,DELETE i:2 r:0:1:0
xgroup|setid|RW,UPDATE i:2 r:0:1:0
xinfo|consumers|RO,ACCESS i:2 r:0:1:0
xinfo|groups|RO,ACCESS i:2 r:0:1:0
xinfo|stream|RO,ACCESS i:2 r:0:1:0
xlen|RO i:1 r:0:1:0
xpending|RO,ACCESS i:1 r:0:1:0
xrange|RO,ACCESS i:1 r:0:1:0
xreadgroup|RO,ACCESS k:STREAMS:4 r:-1:1:2
xread|RO,ACCESS k:STREAMS:1 r:-1:1:2
xrevrange|RO,ACCESS i:1 r:0:1:0
xsetid|RW,UPDATE i:1 r:0:1:0
xtrim|RW,DELETE i:1 r:0:1:0
zadd|RW,UPDATE i:1 r:0:1:0
zcard|RO i:1 r:0:1:0
zcount|RO,ACCESS i:1 r:0:1:0
zdiffstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 n:0:1:1
zdiff|RO,ACCESS i:1 n:0:1:1
zincrby|RW,ACCESS,UPDATE i:1 r:0:1:0
zintercard|RO,ACCESS i:1 n:0:1:1
zinterstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 n:0:1:1
zinter|RO,ACCESS i:1 n:0:1:1
zlexcount|RO,ACCESS i:1 r:0:1:0
zmpop|RW,ACCESS,DELETE i:1 n:0:1:1
zmscore|RO,ACCESS i:1 r:0:1:0
zpopmax|RW,ACCESS,DELETE i:1 r:0:1:0
zpopmin|RW,ACCESS,DELETE i:1 r:0:1:0
zrandmember|RO,ACCESS i:1 r:0:1:0
zrangebylex|RO,ACCESS i:1 r:0:1:0
zrangebyscore|RO,ACCESS i:1 r:0:1:0
zrangestore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 r:0:1:0
zrange|RO,ACCESS i:1 r:0:1:0
zrank|RO,ACCESS i:1 r:0:1:0
zremrangebylex|RW,DELETE i:1 r:0:1:0
zremrangebyrank|RW,DELETE i:1 r:0:1:0
zremrangebyscore|RW,DELETE i:1 r:0:1:0
zrem|RW,DELETE i:1 r:0:1:0
zrevrangebylex|RO,ACCESS i:1 r:0:1:0
zrevrangebyscore|RO,ACCESS i:1 r:0:1:0
zrevrange|RO,ACCESS i:1 r:0:1:0
zrevrank|RO,ACCESS i:1 r:0:1:0
zscan|RO,ACCESS i:1 r:0:1:0
zscore|RO,ACCESS i:1 r:0:1:0
zunionstore|OW,UPDATE i:1 r:0:1:0;RO,ACCESS i:2 n:0:1:1
zunion|RO,ACCESS i:1 n:0:1:1
";

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(argv: &[&str], pos: &[usize]) -> Vec<Vec<&'static str>> {
        let a: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        key_flags(argv[0], &a, pos)
            .into_iter()
            .map(flag_names)
            .collect()
    }

    #[test]
    fn every_spec_parses() {
        assert!(specs("get").len() == 1);
        assert_eq!(specs("object|encoding")[0].begin, Begin::Index(2));
        assert!(specs("nosuchcommand").is_empty());
    }

    #[test]
    fn flags_per_key_like_redis() {
        assert_eq!(flags_of(&["set", "k", "v"], &[1]), [["OW", "update"]]);
        assert_eq!(
            flags_of(&["set", "k", "v", "get"], &[1]),
            [["RW", "access", "update"]]
        );
        assert_eq!(
            flags_of(&["lmove", "a", "b", "left", "right"], &[1, 2]),
            vec![vec!["RW", "access", "delete"], vec!["RW", "insert"]]
        );
        assert_eq!(
            flags_of(&["sort", "a", "store", "b"], &[1, 3]),
            vec![vec!["RO", "access"], vec!["OW", "update"]]
        );
        assert_eq!(
            flags_of(&["zunionstore", "d", "2", "a", "b"], &[1, 3, 4]),
            vec![
                vec!["OW", "update"],
                vec!["RO", "access"],
                vec!["RO", "access"]
            ]
        );
        assert_eq!(
            flags_of(&["bitfield", "k", "get", "u8", "0"], &[1]),
            [["RO", "access"]]
        );
        assert_eq!(
            flags_of(&["bitfield", "k", "set", "u8", "0", "1"], &[1]),
            [["RW", "access", "update"]]
        );
    }
}
