//! Feeds arbitrary bytes to `resp::Parser::parse` the way the server's read
//! loop does: parse, advance by `consumed`, stop on `Ok(None)` or `Err`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resp::{ArgSource, Limits, Parser, Request, INLINE_MAX_SIZE};
use std::ops::Range;

/// The server re-parses from the start of its buffer whenever more bytes
/// arrive, so a request must not look complete before all of its `consumed`
/// bytes are there, and exactly those bytes must give the same request.
fn check_prefixes(
    buf: &[u8],
    limits: &Limits,
    req: &Request,
    args: &[Range<usize>],
    scratch: &[u8],
) {
    let mut p = Parser::new();
    let c = req.consumed;
    let r = p
        .parse(&buf[..c], limits)
        .expect("exact prefix failed")
        .expect("exact prefix incomplete");
    assert_eq!(
        (r.consumed, r.source, r.inline),
        (c, req.source, req.inline)
    );
    assert_eq!(p.args, args);
    if req.source == ArgSource::Scratch {
        assert_eq!(p.scratch, scratch);
    }
    // A few shorter cuts: last byte missing, half, and one picked by the data.
    let pick = buf[..c]
        .iter()
        .fold(0usize, |h, &b| h.wrapping_mul(31).wrapping_add(b as usize));
    for cut in [c - 1, c / 2, pick % c] {
        match p.parse(&buf[..cut], limits) {
            Ok(None) => {}
            other => panic!("prefix of {cut}/{c} bytes gave {other:?}"),
        }
    }
}

fn drive(parser: &mut Parser, data: &[u8], limits: &Limits, max_reqs: usize) {
    let mut pos = 0usize;
    // Each successful parse consumes at least one byte, so this terminates;
    // the bound is a backstop that turns a non-advancing parser into a crash.
    for n in 0..=data.len() {
        let buf = &data[pos..];
        if buf.is_empty() || n >= max_reqs {
            return;
        }
        match parser.parse(buf, limits) {
            Ok(None) | Err(_) => return,
            Ok(Some(req)) => {
                assert!(req.consumed > 0, "request consumed 0 bytes");
                assert!(
                    req.consumed <= buf.len(),
                    "consumed {} > remaining {}",
                    req.consumed,
                    buf.len()
                );
                assert_eq!(req.inline, req.source == ArgSource::Scratch);
                let base: &[u8] = match req.source {
                    ArgSource::Input => buf,
                    ArgSource::Scratch => &parser.scratch,
                };
                for r in &parser.args {
                    assert!(
                        r.start <= r.end && r.end <= base.len(),
                        "arg range {r:?} outside {:?} buffer of len {}",
                        req.source,
                        base.len()
                    );
                    // Multibulk arguments must lie within the bytes consumed.
                    if req.source == ArgSource::Input {
                        assert!(
                            r.end <= req.consumed,
                            "arg {r:?} past consumed {}",
                            req.consumed
                        );
                    }
                    let _ = &base[r.clone()];
                }
                // Bounded, so 64 KB pipelines of tiny requests stay fast.
                if n < 64 {
                    check_prefixes(buf, limits, &req, &parser.args, &parser.scratch);
                }
                pos += req.consumed;
            }
        }
    }
    panic!("parser did not advance");
}

fn run(data: &[u8], max_reqs: usize) {
    let mut parser = Parser::new();
    drive(&mut parser, data, &Limits::default(), max_reqs);
    // Reuse the same parser (stale args/scratch must not leak into results).
    drive(
        &mut parser,
        data,
        &Limits {
            max_bulk_len: 16,
            authenticated: false,
        },
        max_reqs,
    );
}

fuzz_target!(|data: &[u8]| {
    run(data, usize::MAX);
    // Expansion mode, to reach the 64 KB line limits that libFuzzer's small
    // inputs never do: 0xFF head 0x00 tail -> head + tail repeated past
    // INLINE_MAX_SIZE (e.g. "\xff*1\r\n$\x001" is a 64 KB bulk header).
    if let Some((&0xff, rest)) = data.split_first() {
        if let Some(z) = rest.iter().position(|&b| b == 0) {
            let (head, tail) = (&rest[..z], &rest[z + 1..]);
            if !tail.is_empty() {
                let mut big = head.to_vec();
                while big.len() <= INLINE_MAX_SIZE + 8 {
                    big.extend_from_slice(tail);
                }
                // Only the first few requests: the point is the long lines.
                run(&big, 8);
            }
        }
    }
});
