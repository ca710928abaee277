//! Fuzz target: arbitrary bytes through `wirewatch::parse::parse_feed`, then the caps,
//! determinism and item-key invariants of `wirewatch_fuzz::check_parse_feed`.
//! Panics caught inside wirewatch are not crashes (see `install_panic_hook`); each input runs
//! on a 2 MiB thread, as in the daemon, so recursion too deep for production is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: wirewatch_fuzz::install_panic_hook(), |data: &[u8]| {
    wirewatch_fuzz::run_on_blocking_stack(wirewatch_fuzz::check_parse_feed, data)
});
