//! Glob-style pattern matching with the exact semantics of Redis's
//! `stringmatchlen` (KEYS, SCAN MATCH, CONFIG GET, PSUBSCRIBE, ACL patterns).
//!
//! The pattern is compiled into a small token list and matched with an
//! iterative backtracking loop that only remembers the most recent `*`. That
//! keeps the worst case at `O(pattern * string)` time and constant stack depth,
//! whatever the input.
//!
//! Quirks of Redis 7.2 that are reproduced on purpose:
//!
//! * An empty subject string is matched only by the empty pattern (so `*`
//!   does not match `""`).
//! * Redis stops recursing after 1000 nested `*` groups and reports "no match"
//!   from there. The observable effect is that a pattern with more than 1000
//!   star groups (runs of `*`), not counting a run at the very end of the
//!   pattern, never matches anything.
//! * Inside `[...]`, range bounds and the subject byte are compared as C
//!   `char` values, which are signed on x86-64: `[a-\xff]` is the range
//!   `\xff..=a` (-1 to 97) after the usual swap of reversed bounds.
//! * An escaped byte inside brackets is compared case-sensitively even in
//!   `nocase` mode, and an unterminated `[` class extends to the end of the
//!   pattern.

/// Maximum number of non-trailing `*` groups Redis 7.2 follows before it
/// gives up (its `nesting > 1000` guard).
const MAX_STAR_GROUPS: usize = 1000;

/// A set of bytes, one bit per possible value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn invert(&mut self) {
        for word in &mut self.0 {
            *word = !*word;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A run of one or more `*`.
    Star,
    /// `?`: any single byte.
    Any,
    /// A literal byte, stored case-folded when the pattern is case-insensitive.
    Byte(u8),
    /// A bracket expression, already resolved to the set of bytes it accepts.
    Set(Box<ByteSet>),
}

/// ASCII lower-casing as done by C `tolower` in the "C" locale.
fn fold(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

/// glibc's `tolower` applied to a (possibly negative) C `char` value in the
/// "C" locale. Besides folding `A-Z`, glibc maps the negative values -128..=-2
/// to their unsigned counterparts (its table is indexed from -128), while -1
/// is `EOF` and comes back unchanged. This matters for nocase ranges.
fn fold_char(c: i32) -> i32 {
    match c {
        65..=90 => c + 32,
        -128..=-2 => c + 256,
        _ => c,
    }
}

/// The value a byte has as a C `char` on x86-64 (signed).
fn c_char(b: u8) -> i32 {
    i32::from(b as i8)
}

/// A glob pattern compiled once and matchable against many subjects.
///
/// Use this instead of [`glob_match`] when the same pattern is applied to a
/// lot of strings (KEYS, SCAN). Matching results are identical.
#[derive(Clone, Debug)]
pub struct GlobPattern {
    tokens: Vec<Token>,
    nocase: bool,
    /// Set when Redis's nesting guard would make every match fail.
    never_matches: bool,
}

impl GlobPattern {
    /// Compiles `pattern`; `nocase` folds ASCII letters on both sides.
    ///
    /// Every byte string is a valid pattern: malformed brackets and dangling
    /// escapes are interpreted the way Redis interprets them.
    pub fn new(pattern: &[u8], nocase: bool) -> GlobPattern {
        let tokens = compile(pattern, nocase);
        let stars = tokens.iter().filter(|t| **t == Token::Star).count();
        let trailing = usize::from(tokens.last() == Some(&Token::Star));
        GlobPattern {
            never_matches: stars - trailing > MAX_STAR_GROUPS,
            tokens,
            nocase,
        }
    }

    /// Reports whether `subject` matches the whole pattern.
    ///
    /// Runs in `O(pattern * subject)` time at worst, without recursion.
    pub fn matches(&self, subject: &[u8]) -> bool {
        if subject.is_empty() {
            return self.tokens.is_empty();
        }
        if self.never_matches {
            return false;
        }
        let tokens = &self.tokens;
        let (mut ti, mut si) = (0usize, 0usize);
        // After the most recent star: (token index following it, subject
        // index where the star's current match ends).
        let mut resume: Option<(usize, usize)> = None;
        loop {
            match tokens.get(ti) {
                Some(Token::Star) => {
                    if ti + 1 == tokens.len() {
                        return true;
                    }
                    ti += 1;
                    resume = Some((ti, si));
                    continue;
                }
                Some(token) => {
                    if let Some(&b) = subject.get(si) {
                        if self.token_accepts(token, b) {
                            ti += 1;
                            si += 1;
                            continue;
                        }
                    }
                }
                None if si == subject.len() => return true,
                None => {}
            }
            // Mismatch: let the last star swallow one more byte and retry.
            match resume {
                Some((t, s)) if s < subject.len() => {
                    resume = Some((t, s + 1));
                    ti = t;
                    si = s + 1;
                }
                _ => return false,
            }
        }
    }

    fn token_accepts(&self, token: &Token, b: u8) -> bool {
        match token {
            Token::Star | Token::Any => true,
            Token::Byte(p) if self.nocase => *p == fold(b),
            Token::Byte(p) => *p == b,
            Token::Set(set) => set.contains(b),
        }
    }
}

/// Matches `string` against the glob `pattern` exactly like Redis's
/// `stringmatchlen`.
///
/// Supports `*`, `?`, `[...]` classes (with `^` negation, ranges in either
/// order and `\` escapes) and `\` escapes outside classes; `nocase` folds
/// ASCII letters. See the module documentation for the Redis quirks kept.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    GlobPattern::new(pattern, nocase).matches(string)
}

/// Turns a pattern into tokens, following Redis's parsing rules.
fn compile(pattern: &[u8], nocase: bool) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        let c = pattern[i];
        i += 1;
        let token = match c {
            b'*' => {
                while pattern.get(i) == Some(&b'*') {
                    i += 1;
                }
                Token::Star
            }
            b'?' => Token::Any,
            b'[' => {
                let (set, used) = compile_class(&pattern[i..], nocase);
                i += used;
                Token::Set(Box::new(set))
            }
            b'\\' if i < pattern.len() => {
                i += 1;
                literal(pattern[i - 1], nocase)
            }
            other => literal(other, nocase),
        };
        tokens.push(token);
    }
    tokens
}

fn literal(b: u8, nocase: bool) -> Token {
    Token::Byte(if nocase { fold(b) } else { b })
}

/// Parses the body of a bracket expression (`body` starts right after the
/// `[`). Returns the accepted set and how many bytes of `body` it consumed,
/// including the closing `]` when there is one.
fn compile_class(body: &[u8], nocase: bool) -> (ByteSet, usize) {
    let mut set = ByteSet::default();
    let negate = body.first() == Some(&b'^');
    let mut i = usize::from(negate);
    loop {
        let rest = &body[i..];
        match rest {
            // Unterminated class: it simply ends with the pattern.
            [] => break,
            [b'\\', escaped, ..] => {
                // Escaped bytes are compared exactly, even in nocase mode.
                set.insert(*escaped);
                i += 2;
            }
            [b']', ..] => {
                i += 1;
                break;
            }
            [lo, b'-', hi, ..] => {
                add_range(&mut set, *lo, *hi, nocase);
                i += 3;
            }
            [b, ..] => {
                add_literal(&mut set, *b, nocase);
                i += 1;
            }
        }
    }
    if negate {
        set.invert();
    }
    (set, i)
}

fn add_literal(set: &mut ByteSet, b: u8, nocase: bool) {
    set.insert(b);
    if nocase && b.is_ascii_alphabetic() {
        set.insert(b ^ 0x20);
    }
}

/// Adds a `lo-hi` range. Bounds are swapped when reversed and compared as
/// signed C chars; in nocase mode both the bounds (after the swap) and the
/// subject byte are lower-cased, as Redis does.
fn add_range(set: &mut ByteSet, lo: u8, hi: u8, nocase: bool) {
    let (mut start, mut end) = (c_char(lo), c_char(hi));
    if start > end {
        std::mem::swap(&mut start, &mut end);
    }
    if nocase {
        start = fold_char(start);
        end = fold_char(end);
    }
    for b in 0..=u8::MAX {
        let mut c = c_char(b);
        if nocase {
            c = fold_char(c);
        }
        if (start..=end).contains(&c) {
            set.insert(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    #[test]
    fn literals_and_wildcards() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("hello", "hello"));
        assert!(!m("hello", "hell"));
        assert!(!m("hell", "hello"));
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("*", "anything"));
        assert!(m("**", "x"));
        assert!(m("a*", "a"));
        assert!(m("a***", "a"));
        assert!(m("*a", "a"));
        assert!(m("*a*", "bab"));
        assert!(!m("*a*", "bbb"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(m("a*b*c", "abc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*.txt", "file.txt"));
        assert!(!m("*.txt", "file.txt.bak"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("a*?", "a"));
        assert!(m("a*?", "ab"));
        assert!(m("?*", "a"));
    }

    #[test]
    fn empty_subject_only_matches_empty_pattern() {
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(!m("?", ""));
        assert!(!m("[^]", ""));
        assert!(m("", ""));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        // Reversed ranges are swapped.
        assert!(m("[z-a]", "m"));
        assert!(m("[9-0]", "5"));
        // Empty classes.
        assert!(!m("[]", "a"));
        assert!(!m("[]", "]"));
        assert!(m("[^]", "a"));
        assert!(m("[^]", "]"));
        assert!(m("[^]x", "ax"));
        // `]` right after `[` closes the class, it is not a member.
        assert!(!m("[]a]", "a"));
        assert!(!m("[]a]", "a]"));
        // A dash in the last position pairs with the `]`: range `]`..`a`.
        assert!(m("[a-]", "a"));
        assert!(m("[a-]", "_"));
        assert!(m("[a-]", "]"));
        assert!(!m("[a-]", "-"));
        assert!(!m("[a-]", "b"));
        // ... and the class is then unterminated, absorbing what follows.
        assert!(m("[a-]x", "x"));
        assert!(!m("[a-]x", "ax"));
        assert!(m("[-a]", "-"));
        assert!(m("[-a]", "a"));
        assert!(m("[a-b-c]", "-"));
        assert!(m("[a-b-c]", "c"));
        assert!(!m("[a-b-c]", "d"));
        assert!(m("x[^a-c]y", "xdy"));
        assert!(!m("x[^a-c]y", "xby"));
        assert!(m("[*]", "*"));
        assert!(!m("[*]", "a"));
        assert!(m("[?]", "?"));
        assert!(!m("[?]", "a"));
    }

    #[test]
    fn unterminated_classes() {
        assert!(!m("[", "["));
        assert!(!m("[", "a"));
        assert!(!m("a[", "a"));
        assert!(!m("a[", "a["));
        assert!(m("[^", "x"));
        assert!(m("[^", "^"));
        assert!(!m("[^", "xy"));
        assert!(m("[abc", "b"));
        assert!(!m("[abc", "d"));
        assert!(!m("[abc", "bc"));
        assert!(m("[a-", "a"));
        assert!(m("[a-", "-"));
        assert!(!m("[a-", "b"));
        assert!(m("[\\", "\\"));
        assert!(!m("[\\", "a"));
        assert!(m("[^abc", "z"));
        assert!(!m("[^abc", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "a"));
        assert!(m("\\[a]", "[a]"));
        assert!(m("a\\\\b", "a\\b"));
        assert!(m("\\a", "a"));
        // A backslash at the very end is a literal backslash.
        assert!(m("\\", "\\"));
        assert!(m("a\\", "a\\"));
        assert!(!m("a\\", "a"));
        assert!(m("*\\", "xx\\"));
        // Escapes inside classes.
        assert!(m("[\\]]", "]"));
        assert!(m("[\\]a]", "a"));
        assert!(m("[\\-]", "-"));
        assert!(!m("[\\-]", "\\"));
        assert!(m("[\\^a]", "^"));
        assert!(m("[\\a-c]", "-"));
        assert!(m("[\\a-c]", "c"));
        assert!(!m("[\\a-c]", "b"));
        // `[\]` is unterminated: the escape eats the `]`.
        assert!(m("[\\]", "]"));
        assert!(!m("[\\]", "\\"));
        // Escaped `*` after a star run is not part of the run.
        assert!(m("*\\*", "ab*"));
        assert!(!m("*\\*", "ab"));
    }

    #[test]
    fn nocase() {
        assert!(mi("HeLLo", "hello"));
        assert!(mi("hello", "HELLO"));
        assert!(!m("hello", "HELLO"));
        assert!(mi("h[A-Z]llo", "hello"));
        assert!(mi("h[a-z]llo", "hEllo"));
        assert!(mi("[E]", "e"));
        assert!(mi("[^E]", "x"));
        assert!(!mi("[^E]", "e"));
        // Escaped bytes in a class stay case-sensitive.
        assert!(!mi("[\\E]", "e"));
        assert!(mi("[\\E]", "E"));
        // Outside a class an escape is folded like any literal.
        assert!(mi("\\E", "e"));
        // Bounds are folded after the swap: [A-z] becomes [a-z] so `[`
        // (between `Z` and `a`) no longer matches.
        assert!(m("[A-z]", "["));
        assert!(!mi("[A-z]", "["));
        assert!(mi("[A-z]", "Q"));
        // Non-ASCII bytes are never folded.
        assert!(!glob_match(b"\xc3", b"\xe3", true));
    }

    #[test]
    fn signed_char_ranges() {
        // As on x86-64 Redis: bytes >= 0x80 are negative chars.
        assert!(glob_match(b"[a-\xff]", b"a", false));
        assert!(glob_match(b"[a-\xff]", b"\xff", false));
        assert!(glob_match(b"[a-\xff]", b"0", false));
        assert!(!glob_match(b"[a-\xff]", b"b", false));
        assert!(!glob_match(b"[a-\xff]", b"\x80", false));
        assert!(glob_match(b"[\x80-\xff]", b"\x90", false));
        assert!(!glob_match(b"[\x80-\xff]", b"a", false));
        assert!(glob_match(b"[\x00-\x7f]", b"\x00", false));
        assert!(!glob_match(b"[\x00-\x7f]", b"\x80", false));
    }

    #[test]
    fn binary_safe() {
        assert!(glob_match(b"a\x00*", b"a\x00bc", false));
        assert!(!glob_match(b"a\x00*", b"a\x01bc", false));
        assert!(glob_match(b"?", b"\x00", false));
        assert!(glob_match(b"[\x00]", b"\x00", false));
    }

    #[test]
    fn nesting_limit() {
        let a = "a".repeat(2000);
        // 1000 non-trailing star groups are fine, 1001 never match.
        assert!(m(&"*a".repeat(1000), &a));
        assert!(!m(&"*a".repeat(1001), &a));
        assert!(m(&format!("{}*", "*a".repeat(1000)), &a));
        assert!(!m(&format!("{}*", "*a".repeat(1001)), &a));
        // Consecutive stars count once.
        assert!(m(&"**a".repeat(1000), &a));
        // Escaped stars do not count.
        assert!(m(&"\\*".repeat(1500), &"*".repeat(1500)));
        let star_q = |n: usize| "*a".repeat(n) + "*?*";
        assert!(m(&star_q(999), &a));
        assert!(!m(&star_q(1000), &a));
        assert!(!m(&format!("{}*?", "*a".repeat(1000)), &a));
        assert!(m(&"?*".repeat(1001), &"a".repeat(1001)));
        assert!(m(&"?*".repeat(1001), &"a".repeat(1002)));
        assert!(m(&format!("{}*", "*?".repeat(1000)), &"a".repeat(1000)));
        // The regression test from Redis' keyspace.tcl.
        assert!(!m(&"*?".repeat(50_000), &"a".repeat(50_000)));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let start = Instant::now();
        let long = vec![b'a'; 100_000];
        let stars = vec![b'*'; 10_000];
        assert!(glob_match(&stars, &long, false));
        let mut stars_b = stars.clone();
        stars_b.push(b'b');
        assert!(!glob_match(&stars_b, &long, false));
        assert!(!glob_match(&"*a".repeat(10_000).into_bytes(), &long, false));
        let mut many = "a*".repeat(1000).into_bytes();
        many.push(b'b');
        assert!(!glob_match(&many, &long, false));
        assert!(!m(
            "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            &"a".repeat(40)
        ));
        let mut middle = "*a".repeat(500).into_bytes();
        middle.extend_from_slice(b"*?b*");
        assert!(!glob_match(&middle, &long, true));
        // Quadratic but bounded: every start position of the last star
        // re-scans a 200-byte literal run (Redis behaves the same way).
        let mut quadratic = b"*".to_vec();
        quadratic.extend_from_slice(&[b'a'; 200]);
        quadratic.push(b'b');
        assert!(!glob_match(&quadratic, &long, false));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn compiled_pattern_reuse() {
        let p = GlobPattern::new(b"user:[0-9]*", false);
        assert!(p.matches(b"user:1"));
        assert!(p.matches(b"user:99xyz"));
        assert!(!p.matches(b"user:x"));
        assert!(!p.matches(b""));
    }

    #[test]
    fn redis_reference_vectors() {
        let data = include_str!("testdata/glob_vectors.txt");
        let mut count = 0;
        for line in crate::testutil::data_lines(data) {
            let f: Vec<&str> = line.split(' ').collect();
            let (pattern, subject) = (crate::testutil::unhex(f[1]), crate::testutil::unhex(f[2]));
            let expected = f[3] == "1";
            assert_eq!(
                glob_match(&pattern, &subject, f[0] == "1"),
                expected,
                "{line}"
            );
            count += 1;
        }
        assert!(count >= 2000);
    }

    /// Straightforward recursive matcher for patterns without brackets or
    /// escapes, used as an oracle for the iterative one.
    fn naive(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) => (0..=s.len()).any(|k| naive(rest, &s[k..])),
            Some((b'?', rest)) => !s.is_empty() && naive(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && naive(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_naive_matcher(p in "[ab*?]{0,10}", s in "[ab]{1,10}") {
            prop_assert_eq!(m(&p, &s), naive(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn literal_pattern_matches_itself(s in "[a-zA-Z0-9:_]{1,30}") {
            prop_assert!(m(&s, &s));
            prop_assert!(mi(&s.to_uppercase(), &s));
        }

        #[test]
        fn never_panics(p in proptest::collection::vec(any::<u8>(), 0..40),
                        s in proptest::collection::vec(any::<u8>(), 0..40),
                        nocase in any::<bool>()) {
            let _ = glob_match(&p, &s, nocase);
        }
    }
}
