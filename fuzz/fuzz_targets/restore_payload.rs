//! RESTORE's payload parser on arbitrary bytes (checksum not required, as
//! with DEBUG SET-SKIP-CHECKSUM-VALIDATION 1): never panics; a payload that
//! parses dumps again to one that parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lodestone::persist::rdb;

fuzz_target!(|data: &[u8]| {
    let lim = rdb::BuildLimits {
        deep: true,
        ..Default::default()
    };
    let _ = rdb::verify_payload(data, true);
    if let Ok(v) = rdb::read_payload(data, &lim) {
        let again = rdb::dump_payload(&v, &rdb::SaveOpts::default());
        assert!(rdb::verify_payload(&again, true));
        let back = rdb::read_payload(&again, &lim).expect("re-dumped payload parses");
        assert_eq!(back.type_name(), v.type_name());
    }
    let lim = rdb::BuildLimits::default();
    let _ = rdb::read_payload(data, &lim);
});
