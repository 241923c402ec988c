//! The RDB file loader on arbitrary bytes: never panics, never allocates
//! past what the input can hold, with and without deep checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lodestone::persist::rdb;

fuzz_target!(|data: &[u8]| {
    for deep in [false, true] {
        let lim = rdb::BuildLimits {
            deep,
            ..Default::default()
        };
        let mut rd = rdb::Reader::new(data, data.len() as u64);
        let _ = rdb::load(&mut rd, &lim, true, 16, &mut |_| Ok(()));
    }
});
