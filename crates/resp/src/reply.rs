//! Reply encoding for RESP2 and RESP3 into a growable output buffer.
//!
//! Commands write replies through [`Reply`], which knows the client's
//! protocol version and picks the RESP2 fallback for RESP3-only types
//! (maps become flat arrays, doubles become bulk strings, and so on), the
//! same way Redis's `addReply*` family does.

/// The client's protocol version (HELLO 2 or HELLO 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// A reply builder that appends encoded replies to a byte buffer.
pub struct Reply<'a> {
    pub buf: &'a mut Vec<u8>,
    pub proto: Proto,
}

/// A placeholder for an aggregate whose length is known only after its
/// elements are written (Redis's deferred length replies).
pub struct Deferred {
    pos: usize,
}

/// The kind of aggregate behind a deferred length.
#[derive(Clone, Copy, Debug)]
pub enum Aggregate {
    Array,
    Map,
    Set,
}

impl<'a> Reply<'a> {
    pub fn new(buf: &'a mut Vec<u8>, proto: Proto) -> Self {
        Reply { buf, proto }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    #[inline]
    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`-style status reply.
    pub fn simple(&mut self, s: &str) {
        self.simple_bytes(s.as_bytes());
    }

    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        // A status line may not contain CR or LF; Redis replaces them.
        for &c in s {
            self.buf
                .push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// An error reply. `msg` includes the code (e.g. `ERR ...`); a leading
    /// `-` is tolerated. Newlines are replaced as Redis does.
    pub fn error(&mut self, msg: &str) {
        let m = msg.strip_prefix('-').unwrap_or(msg);
        self.buf.push(b'-');
        for &c in m.as_bytes() {
            self.buf
                .push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        // One reservation, then plain copies (no growth check per piece).
        let mut len = itoa::Buffer::new();
        let len = len.format(data.len()).as_bytes();
        self.buf.reserve(len.len() + data.len() + 5);
        self.buf.push(b'$');
        self.buf.extend_from_slice(len);
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding a decimal integer.
    pub fn bulk_int(&mut self, n: i64) {
        self.bulk(itoa::Buffer::new().format(n).as_bytes());
    }

    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3).
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs (a flat array of 2n elements in RESP2).
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', 2 * n as i64),
            Proto::Resp3 => self.header(b'%', n as i64),
        }
    }

    /// A set of `n` elements (an array in RESP2).
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'~', n as i64),
        }
    }

    /// A push message of `n` elements (an array in RESP2).
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'>', n as i64),
        }
    }

    /// A double, given its already formatted text (a bulk string in RESP2).
    pub fn double_text(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.buf.push(b',');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A boolean (`:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp2 => self.int(b as i64),
            Proto::Resp3 => self
                .buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// Verbatim text (`=` with a three letter format in RESP3, bulk in RESP2).
    pub fn verbatim(&mut self, text: &[u8], format: &str) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.header(b'=', (text.len() + 4) as i64);
                self.buf.extend_from_slice(format.as_bytes());
                self.buf.push(b':');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A big number given as decimal text (bulk string in RESP2).
    pub fn big_number(&mut self, text: &[u8]) {
        match self.proto {
            Proto::Resp2 => self.bulk(text),
            Proto::Resp3 => {
                self.buf.push(b'(');
                self.buf.extend_from_slice(text);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Writes raw, already encoded bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Starts an aggregate whose length is filled in by [`Reply::end_deferred`].
    pub fn begin_deferred(&mut self) -> Deferred {
        Deferred {
            pos: self.buf.len(),
        }
    }

    /// Inserts the header of a deferred aggregate of `n` elements (pairs for maps).
    pub fn end_deferred(&mut self, d: Deferred, kind: Aggregate, n: usize) {
        let (prefix, count) = match (kind, self.proto) {
            (Aggregate::Array, _) => (b'*', n),
            (Aggregate::Map, Proto::Resp2) => (b'*', 2 * n),
            (Aggregate::Map, Proto::Resp3) => (b'%', n),
            (Aggregate::Set, Proto::Resp2) => (b'*', n),
            (Aggregate::Set, Proto::Resp3) => (b'~', n),
        };
        let mut h = Vec::with_capacity(16);
        h.push(prefix);
        h.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        h.extend_from_slice(b"\r\n");
        self.buf.splice(d.pos..d.pos, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_forms() {
        let mut b = Vec::new();
        let mut r = Reply::new(&mut b, Proto::Resp2);
        r.map(1);
        r.bulk(b"k");
        r.double_text(b"1.5");
        r.null();
        r.boolean(true);
        assert_eq!(b, b"*2\r\n$1\r\nk\r\n$3\r\n1.5\r\n$-1\r\n:1\r\n");
        let mut b = Vec::new();
        let mut r = Reply::new(&mut b, Proto::Resp3);
        r.map(1);
        r.bulk(b"k");
        r.double_text(b"1.5");
        r.null();
        r.boolean(true);
        assert_eq!(b, b"%1\r\n$1\r\nk\r\n,1.5\r\n_\r\n#t\r\n");
    }

    #[test]
    fn deferred_and_errors() {
        let mut b = Vec::new();
        let mut r = Reply::new(&mut b, Proto::Resp2);
        r.int(7);
        let d = r.begin_deferred();
        r.bulk(b"a");
        r.bulk(b"b");
        r.end_deferred(d, Aggregate::Array, 2);
        r.error("ERR bad\r\nthing");
        assert_eq!(b, b":7\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n-ERR bad  thing\r\n");
    }
}
