//! Fuzz target: arbitrary UTF-8 through `wirewatch::parse::html_to_text`, then the
//! one-line plain-text invariants of `wirewatch_fuzz::check_html_to_text`.
//! Panics caught inside wirewatch are not crashes; see `install_panic_hook`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: wirewatch_fuzz::install_panic_hook(), |data: &[u8]| {
    wirewatch_fuzz::run_checked(wirewatch_fuzz::check_html_to_text, data)
});
