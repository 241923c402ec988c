//! Request parsing: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and
//! inline commands (`GET k\r\n`), as Redis's `processMultibulkBuffer` and
//! `processInlineBuffer` accept them, with the same limits and errors.
//!
//! The parser never allocates for multibulk requests: it returns argument
//! ranges into the caller's buffer. Inline requests may contain quoted
//! strings with escapes, so their arguments are copied into a scratch buffer.

use std::ops::Range;

/// Longest line (inline request or `*N`/`$N` header) accepted before the
/// terminating newline arrives (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Limits that a not yet authenticated client may not exceed (Redis 7.2).
const UNAUTH_MAX_MULTIBULK: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;

/// Per-request limits, taken from the server configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk argument.
    pub max_bulk_len: i64,
    /// Whether the client has authenticated (tighter limits apply if not).
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// A protocol violation. Redis replies with the error and closes the
/// connection after flushing pending replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    TooBigMbulkCount,
    TooBigBulkCount,
    TooBigInline,
    UnbalancedQuotes,
    UnauthenticatedMultibulkLength,
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// The error text Redis sends (without the leading `-` and CRLF).
    pub fn message(&self) -> String {
        match self {
            ProtocolError::InvalidMultibulkLength => {
                "ERR Protocol error: invalid multibulk length".into()
            }
            ProtocolError::InvalidBulkLength => "ERR Protocol error: invalid bulk length".into(),
            ProtocolError::ExpectedDollar(c) => {
                format!("ERR Protocol error: expected '$', got '{}'", *c as char)
            }
            ProtocolError::TooBigMbulkCount => {
                "ERR Protocol error: too big mbulk count string".into()
            }
            ProtocolError::TooBigBulkCount => {
                "ERR Protocol error: too big bulk count string".into()
            }
            ProtocolError::TooBigInline => "ERR Protocol error: too big inline request".into(),
            ProtocolError::UnbalancedQuotes => {
                "ERR Protocol error: unbalanced quotes in request".into()
            }
            ProtocolError::UnauthenticatedMultibulkLength => {
                "ERR Protocol error: unauthenticated multibulk length".into()
            }
            ProtocolError::UnauthenticatedBulkLength => {
                "ERR Protocol error: unauthenticated bulk length".into()
            }
        }
    }
}

/// Where a parsed request's arguments live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSource {
    /// Ranges index the input buffer.
    Input,
    /// Ranges index the parser's scratch buffer (inline requests).
    Scratch,
}

/// One parsed request: how many input bytes it used and where its arguments are.
#[derive(Debug)]
pub struct Request {
    pub consumed: usize,
    pub source: ArgSource,
    /// `true` when this is an inline request (affects nothing but statistics).
    pub inline: bool,
}

/// Reusable parser state: the argument ranges of the last request and a
/// scratch buffer for unescaped inline arguments.
#[derive(Default, Debug)]
pub struct Parser {
    pub args: Vec<Range<usize>>,
    pub scratch: Vec<u8>,
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    // Redis looks for '\r' and then requires the '\n' to follow.
    memchr_cr(buf)
}

#[inline]
fn memchr_cr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\r')
}

/// The number of a `*N` or `$N` header in its usual form, read in one
/// pass: 1 to 18 digits starting at `from`, no leading zero (a lone `0`
/// is fine), followed by a CR whose LF has arrived. Returns the number
/// and the CR's index. Anything else (signs, longer numbers, a missing LF,
/// garbage) is left to the general code, which reads these forms the same
/// way and gives Redis's errors for the rest.
#[inline(always)]
fn quick_len(b: &[u8], from: usize) -> Option<(u64, usize)> {
    let mut i = from;
    let mut v: u64 = 0;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        v = v * 10 + d as u64;
        i += 1;
        if i - from > 18 {
            return None;
        }
    }
    let n = i - from;
    if n == 0 || (n > 1 && b[from] == b'0') || i + 1 >= b.len() || b[i] != b'\r' {
        return None;
    }
    Some((v, i))
}

/// Parses a signed decimal as Redis's `string2ll` does (strict: no '+',
/// no spaces, no leading zeros).
fn parse_len(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    // Accumulate with the final sign so that i64::MIN parses, as in Redis.
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = (c - b'0') as i64;
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    if neg && v == 0 {
        return None;
    }
    Some(v)
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one request from the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, `Ok(Some(req))` with
    /// the arguments in `self.args` (possibly zero arguments: an empty
    /// request that must just be skipped), or a protocol error.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        self.args.clear();
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] == b'*' {
            self.parse_multibulk(buf, limits)
        } else {
            self.parse_inline(buf)
        }
    }

    fn parse_multibulk(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<Request>, ProtocolError> {
        let (count, cr) = match quick_len(buf, 1) {
            Some((n, cr)) if n <= i32::MAX as u64 => (n as i64, cr),
            _ => {
                let Some(cr) = find_crlf(buf) else {
                    if buf.len() > INLINE_MAX_SIZE {
                        return Err(ProtocolError::TooBigMbulkCount);
                    }
                    return Ok(None);
                };
                if cr > INLINE_MAX_SIZE {
                    return Err(ProtocolError::TooBigMbulkCount);
                }
                if cr + 1 >= buf.len() {
                    return Ok(None); // the '\n' has not arrived yet
                }
                match parse_len(&buf[1..cr]) {
                    Some(n) if n <= i32::MAX as i64 => (n, cr),
                    _ => return Err(ProtocolError::InvalidMultibulkLength),
                }
            }
        };
        if !limits.authenticated && count > UNAUTH_MAX_MULTIBULK {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        let mut pos = cr + 2;
        if count <= 0 {
            return Ok(Some(Request {
                consumed: pos,
                source: ArgSource::Input,
                inline: false,
            }));
        }
        // Reserve modestly: a hostile count must not allocate gigabytes.
        self.args.reserve((count as usize).min(1024));
        for _ in 0..count {
            let rest = &buf[pos..];
            let quick = match rest.first() {
                Some(b'$') => quick_len(rest, 1),
                _ => None,
            };
            let (len, cr) = match quick {
                Some((n, cr))
                    if (n as i64) <= limits.max_bulk_len
                        && (limits.authenticated || n as i64 <= UNAUTH_MAX_BULK) =>
                {
                    (n as usize, cr)
                }
                _ => {
                    let Some(cr) = find_crlf(rest) else {
                        if rest.len() > INLINE_MAX_SIZE {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(None);
                    };
                    if cr > INLINE_MAX_SIZE {
                        return Err(ProtocolError::TooBigBulkCount);
                    }
                    if rest[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(rest[0]));
                    }
                    if cr + 1 >= rest.len() {
                        return Ok(None);
                    }
                    let len = match parse_len(&rest[1..cr]) {
                        Some(n) if n >= 0 && n <= limits.max_bulk_len => n as usize,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if !limits.authenticated && len as i64 > UNAUTH_MAX_BULK {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    (len, cr)
                }
            };
            let start = pos + cr + 2;
            let end = start + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            self.args.push(start..end);
            pos = end + 2; // Redis does not check the trailing CRLF bytes
        }
        Ok(Some(Request {
            consumed: pos,
            source: ArgSource::Input,
            inline: false,
        }))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            return Ok(None);
        };
        if nl > INLINE_MAX_SIZE {
            return Err(ProtocolError::TooBigInline);
        }
        let mut line = &buf[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        self.scratch.clear();
        if !split_args(line, &mut self.scratch, &mut self.args) {
            return Err(ProtocolError::UnbalancedQuotes);
        }
        Ok(Some(Request {
            consumed: nl + 1,
            source: ArgSource::Scratch,
            inline: true,
        }))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

/// Splits a line into arguments as `sdssplitargs` does: whitespace
/// separates, "double quotes" understand `\n \r \t \b \a \\ \" \xHH`,
/// 'single quotes' understand `\'`, and a closing quote must be followed by
/// whitespace or the end of the line. Returns false on unbalanced quotes.
/// Used by inline requests and by the config file reader.
pub fn split_args(line: &[u8], out: &mut Vec<u8>, ranges: &mut Vec<Range<usize>>) -> bool {
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return true;
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= line.len() {
                    return false;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(line[i + 2]), hex_val(line[i + 3])) {
                        out.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    let e = match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    };
                    out.push(e);
                    i += 2;
                } else if c == b'"' {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return false;
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                    i += 1;
                }
            } else if in_sq {
                if i >= line.len() {
                    return false;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < line.len() && line[i + 1] == b'\'' {
                    out.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return false;
                    }
                    i += 1;
                    break;
                } else {
                    out.push(c);
                    i += 1;
                }
            } else {
                if i >= line.len() {
                    break;
                }
                match line[i] {
                    c if is_space(c) => {
                        i += 1;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
                i += 1;
            }
        }
        ranges.push(start..out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(p: &Parser, buf: &[u8], src: ArgSource) -> Vec<Vec<u8>> {
        let base: &[u8] = if src == ArgSource::Input {
            buf
        } else {
            &p.scratch
        };
        p.args.iter().map(|r| base[r.clone()].to_vec()).collect()
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let mut p = Parser::new();
        let buf = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*1\r\n";
        let r = p.parse(buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(r.consumed, 22);
        assert_eq!(
            args_of(&p, buf, r.source),
            vec![b"GET".to_vec(), b"key".to_vec()]
        );
        for cut in 0..22 {
            assert!(
                p.parse(&buf[..cut], &Limits::default()).unwrap().is_none(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn multibulk_errors() {
        let mut p = Parser::new();
        let l = Limits::default();
        assert_eq!(
            p.parse(b"*x\r\n", &l).unwrap_err(),
            ProtocolError::InvalidMultibulkLength
        );
        assert_eq!(
            p.parse(b"*3000000000\r\n", &l).unwrap_err(),
            ProtocolError::InvalidMultibulkLength
        );
        assert_eq!(
            p.parse(b"*1\r\nfoo\r\n", &l).unwrap_err(),
            ProtocolError::ExpectedDollar(b'f')
        );
        assert_eq!(
            p.parse(b"*1\r\n$-1\r\n", &l).unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
        assert_eq!(
            p.parse(b"*1\r\n$2000000000\r\n", &l).unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
        let big = vec![b'1'; INLINE_MAX_SIZE + 10];
        let mut b = b"*".to_vec();
        b.extend_from_slice(&big);
        assert_eq!(
            p.parse(&b, &l).unwrap_err(),
            ProtocolError::TooBigMbulkCount
        );
        let unauth = Limits {
            authenticated: false,
            ..l
        };
        assert_eq!(
            p.parse(b"*20\r\n", &unauth).unwrap_err(),
            ProtocolError::UnauthenticatedMultibulkLength
        );
        assert_eq!(
            p.parse(b"*1\r\n$20000\r\n", &unauth).unwrap_err(),
            ProtocolError::UnauthenticatedBulkLength
        );
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let mut p = Parser::new();
        let r = p.parse(b"*0\r\n", &Limits::default()).unwrap().unwrap();
        assert_eq!(r.consumed, 4);
        assert!(p.args.is_empty());
        let r = p.parse(b"*-1\r\n", &Limits::default()).unwrap().unwrap();
        assert_eq!(r.consumed, 5);
    }

    /// Whenever the one-pass header reader accepts, the general code
    /// (first CR, LF present, `parse_len`) reads the same number at the
    /// same place, so the fast path never changes a result.
    #[test]
    fn quick_len_agrees_with_the_general_code() {
        let alphabet = b"0129-+\r\na ";
        let mut checked = 0;
        for len in 1..=7u32 {
            for mut code in 0..(alphabet.len() as u64).pow(len) {
                let mut b = vec![b'$'];
                for _ in 0..len {
                    b.push(alphabet[(code % alphabet.len() as u64) as usize]);
                    code /= alphabet.len() as u64;
                }
                if let Some((v, i)) = quick_len(&b, 1) {
                    assert_eq!(find_crlf(&b), Some(i), "{b:?}");
                    assert!(i + 1 < b.len());
                    assert_eq!(parse_len(&b[1..i]), Some(v as i64), "{b:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
        let long = b"$123456789012345678\r\n";
        assert_eq!(quick_len(long, 1), Some((123456789012345678, 19)));
        assert_eq!(quick_len(b"$1234567890123456789\r\n", 1), None);
    }

    #[test]
    fn parse_len_accepts_i64_min() {
        // Redis's string2ll accepts LLONG_MIN, so `*-9223372036854775808`
        // is an empty multibulk (skipped), not a protocol error.
        assert_eq!(parse_len(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_len(b"-9223372036854775809"), None);
        assert_eq!(parse_len(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_len(b"9223372036854775808"), None);
        assert_eq!(parse_len(b"-0"), None);
        assert_eq!(parse_len(b"-12"), Some(-12));
        let mut p = Parser::new();
        let buf = b"*-9223372036854775808\r\n";
        let r = p.parse(buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(r.consumed, buf.len());
        assert!(p.args.is_empty());
        assert_eq!(
            p.parse(b"*1\r\n$-9223372036854775808\r\n", &Limits::default())
                .unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
    }

    #[test]
    fn inline_quotes() {
        let mut p = Parser::new();
        let buf = b"set \"a\\x41\\n\" 'it\\'s'  \r\n";
        let r = p.parse(buf, &Limits::default()).unwrap().unwrap();
        assert!(r.inline);
        assert_eq!(r.consumed, buf.len());
        assert_eq!(
            args_of(&p, buf, r.source),
            vec![b"set".to_vec(), b"aA\n".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(
            p.parse(b"set \"a\r\n", &Limits::default()).unwrap_err(),
            ProtocolError::UnbalancedQuotes
        );
        assert_eq!(
            p.parse(b"set \"a\"b\r\n", &Limits::default()).unwrap_err(),
            ProtocolError::UnbalancedQuotes
        );
        let r = p.parse(b"\r\n", &Limits::default()).unwrap().unwrap();
        assert_eq!(r.consumed, 2);
        assert!(p.args.is_empty());
        assert!(p.parse(b"PING", &Limits::default()).unwrap().is_none());
    }

    #[test]
    fn random_garbage_never_panics() {
        // A tiny deterministic xorshift fuzz loop; cargo-fuzz does the rest.
        let mut s: u64 = 0x9e3779b97f4a7c15;
        let alphabet = b"*$\r\n0123456789-abc\"' \\x";
        let mut p = Parser::new();
        for _ in 0..20000 {
            let mut buf = Vec::new();
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let n = (s % 40) as usize;
            for _ in 0..n {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                buf.push(alphabet[(s % alphabet.len() as u64) as usize]);
            }
            if let Ok(Some(r)) = p.parse(&buf, &Limits::default()) {
                assert!(r.consumed <= buf.len());
                let base_len = if r.source == ArgSource::Input {
                    buf.len()
                } else {
                    p.scratch.len()
                };
                assert!(p.args.iter().all(|a| a.end <= base_len));
            }
        }
    }
}
