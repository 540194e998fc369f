//! Arbitrary operation sequences against the provider's API; see
//! `crates/fuzz-ops` for what each run checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wasi_udp_fuzz_ops::run(data);
});
