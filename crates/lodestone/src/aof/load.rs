//! Reading AOF files: commands are replayed through the normal command
//! path by a client that has no connection and whose replies are dropped.
//!
//! A file must hold RESP arrays (annotation lines starting with `#` are
//! skipped). A tail cut short (a crash mid-write) is reported as
//! truncated together with the length of the complete part; an open
//! MULTI at the end counts as truncated before its MULTI. Anything else
//! that is not a command is a format error.

use crate::commands::{self, Ctx};
use crate::server::client::{Client, ClientHandle};
use crate::server::Server;
use std::sync::Arc;

/// The id Redis gives the AOF-loading fake client (CLIENT_ID_AOF).
pub const AOF_CLIENT_ID: u64 = u64::MAX;

/// What replaying one file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Commands executed.
    pub commands: u64,
    /// Length of the part made of complete commands (and transactions).
    pub valid_len: usize,
    /// Whether the file ended in the middle of a command or transaction.
    pub truncated: bool,
}

/// Loads the RDB image at the start of `data` (a `.base.rdb` file, or an
/// old single-file AOF with an RDB preamble) into the keyspace and returns
/// how many bytes it used.
pub fn load_rdb_preamble(srv: &Server, data: &[u8]) -> Result<usize, String> {
    crate::persist::load_bytes(srv, data)
}

/// A context for a client without a connection, for replaying commands.
pub fn with_loading_ctx<R>(srv: &Server, f: impl FnOnce(&mut Ctx) -> R) -> R {
    let handle = Arc::new(ClientHandle::new(
        AOF_CLIENT_ID,
        String::new(),
        String::new(),
        -1,
        0,
        crate::server::now_ms(),
    ));
    let mut client = Client::new(handle, true);
    let mut out = Vec::new();
    let mut ctx = Ctx::new(srv, &mut client, &mut out);
    ctx.no_monitor = true;
    ctx.prop.loading = true;
    f(&mut ctx)
}

/// Replays the commands in `data` (one AOF file) into the server.
pub fn replay(srv: &Server, data: &[u8]) -> Result<Replayed, String> {
    with_loading_ctx(srv, |ctx| replay_in(ctx, data))
}

fn replay_in(ctx: &mut Ctx, data: &[u8]) -> Result<Replayed, String> {
    let srv = ctx.srv;
    let mut res = Replayed::default();
    let mut pos = 0;
    if data.starts_with(b"REDIS") {
        pos = load_rdb_preamble(srv, data)?;
        res.valid_len = pos;
    }
    let mut parser = resp::Parser::new();
    let limits = resp::Limits {
        max_bulk_len: i64::MAX,
        authenticated: true,
    };
    while pos < data.len() {
        if data[pos] == b'#' {
            // An annotation (aof-timestamp-enabled): skip the line.
            match data[pos..].iter().position(|&c| c == b'\n') {
                Some(n) => {
                    pos += n + 1;
                    if ctx.client.multi.is_none() {
                        res.valid_len = pos;
                    }
                    continue;
                }
                None => {
                    res.truncated = true;
                    break;
                }
            }
        }
        if data[pos] != b'*' {
            return Err("Bad file format reading the append only file".into());
        }
        let req = match parser.parse(&data[pos..], &limits) {
            Ok(Some(r)) => r,
            Ok(None) => {
                res.truncated = true;
                break;
            }
            Err(_) => return Err("Bad file format reading the append only file".into()),
        };
        let base: &[u8] = match req.source {
            resp::ArgSource::Input => &data[pos..],
            resp::ArgSource::Scratch => &parser.scratch,
        };
        let argv: Vec<&[u8]> = parser.args.iter().map(|r| &base[r.clone()]).collect();
        if argv.is_empty() {
            return Err("Bad file format reading the append only file".into());
        }
        if srv.commands.resolve(&argv).is_err() {
            return Err(format!(
                "Unknown command '{}' reading the append only file",
                String::from_utf8_lossy(argv[0])
            ));
        }
        ctx.now_ms = crate::server::now_ms();
        commands::dispatch(ctx, &argv);
        ctx.out.clear();
        res.commands += 1;
        pos += req.consumed;
        if ctx.client.multi.is_none() {
            res.valid_len = pos;
        }
    }
    if ctx.client.multi.is_some() {
        // The transaction never got its EXEC: it is not applied.
        res.truncated = true;
        ctx.client.multi = None;
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn server() -> Server {
        let c = Config::new();
        crate::config::load_text(&c, "databases 4\n").unwrap();
        Server::new(c, String::new(), None)
    }

    fn get(srv: &Server, key: &[u8]) -> Option<Vec<u8>> {
        let mut sh = srv
            .keyspace
            .db(0)
            .shard(crate::keyspace::shard_of(key))
            .lock();
        sh.get_mut(key, crate::server::now_ms())
            .map(|e| match e.value() {
                crate::keyspace::entry::Value::Str(s) => s.with_bytes(|b| b.to_vec()),
                _ => panic!("not a string"),
            })
    }

    const CMDS: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n#TS:123\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n";

    #[test]
    fn replays_complete_files() {
        let srv = server();
        let r = replay(&srv, CMDS).unwrap();
        assert_eq!(r.commands, 2);
        assert!(!r.truncated);
        assert_eq!(r.valid_len, CMDS.len());
        assert_eq!(get(&srv, b"b").as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn truncated_tail_keeps_complete_part() {
        for cut in [CMDS.len() - 1, CMDS.len() - 10, 40] {
            let srv = server();
            let r = replay(&srv, &CMDS[..cut]).unwrap();
            assert!(r.truncated, "cut {cut}");
            assert_eq!(get(&srv, b"a").as_deref(), Some(&b"1"[..]));
            assert_eq!(get(&srv, b"b"), None);
            assert!(r.valid_len <= cut && r.valid_len >= 29);
        }
    }

    #[test]
    fn open_transaction_is_dropped() {
        let srv = server();
        let mut data = CMDS[..27].to_vec();
        data.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n");
        let r = replay(&srv, &data).unwrap();
        assert!(r.truncated);
        assert_eq!(r.valid_len, 27);
        assert_eq!(get(&srv, b"c"), None);
        data.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
        let srv = server();
        let r = replay(&srv, &data).unwrap();
        assert!(!r.truncated);
        assert_eq!(get(&srv, b"c").as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn garbage_is_an_error() {
        let srv = server();
        assert!(replay(&srv, b"!!!garbage\r\n").is_err());
        let mut data = CMDS.to_vec();
        data.extend_from_slice(b"hello world\r\n");
        assert_eq!(
            replay(&srv, &data).unwrap_err(),
            "Bad file format reading the append only file"
        );
        let e = replay(&srv, b"*1\r\n$4\r\nNOPE\r\n").unwrap_err();
        assert!(e.starts_with("Unknown command 'NOPE'"), "{e}");
        assert!(replay(&srv, b"*1\r\n$x\r\n").is_err());
        assert!(replay(&srv, b"REDIS0011").is_err());
    }
}
