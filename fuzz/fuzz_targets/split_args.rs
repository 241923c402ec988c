//! `resp::split_args` (inline requests and the config file reader):
//! every returned range must lie within the output buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Start with a non-empty output buffer, as a reused scratch might be:
    // ranges must index from where the call began appending.
    let mut out = b"prefix".to_vec();
    let mut ranges = Vec::new();
    ranges.push(0..6);
    let ok = resp::split_args(data, &mut out, &mut ranges);
    let mut prev_end = 6;
    for r in &ranges[1..] {
        assert!(
            r.start <= r.end && r.end <= out.len(),
            "range {r:?} outside len {}",
            out.len()
        );
        assert!(
            r.start >= prev_end,
            "ranges overlap or go backwards: {ranges:?}"
        );
        prev_end = r.end;
    }
    if ok {
        // Unescaping never makes arguments longer than the input.
        assert!(out.len() - 6 <= data.len());
        for r in &ranges[1..] {
            let _ = &out[r.clone()];
        }
    }
});
