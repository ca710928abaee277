//! Fuzz target: arbitrary UTF-8, split on `\n` into title / summary / content / categories,
//! matched against the fixed watch-lists of `wirewatch_fuzz::watchlist_specs`; every
//! highlight must slice its field on char boundaries (`wirewatch_fuzz::check_matcher`).
//! Panics caught inside wirewatch are not crashes; see `install_panic_hook`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: wirewatch_fuzz::install_panic_hook(), |data: &[u8]| {
    wirewatch_fuzz::run_checked(wirewatch_fuzz::check_matcher, data)
});
