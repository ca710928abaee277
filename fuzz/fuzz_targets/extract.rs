//! Fuzz target: arbitrary bytes through `wirewatch::extract::extract` on a 2 MiB stack (the
//! daemon extracts on tokio blocking threads), then the invariants of
//! `wirewatch_fuzz::check_extract`. Panics caught inside wirewatch are not crashes, but the
//! check fails on one the extractor reports as caught; see `install_panic_hook`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: wirewatch_fuzz::install_panic_hook(), |data: &[u8]| {
    wirewatch_fuzz::run_on_blocking_stack(wirewatch_fuzz::check_extract, data)
});
