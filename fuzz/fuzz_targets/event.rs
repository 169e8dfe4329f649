//! Raw Lambda event bytes → probe → translation → response serialisation, as the bootstrap
//! does them (`up_proxy::check::roundtrip`). A panic anywhere is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = up_proxy::check::roundtrip(data);
});
