//! Fuzz regressions: every file in `tests/fuzz-regressions/` goes through the same invariant
//! checks as the fuzz target its name starts with (`parse_feed-`, `html_to_text-`,
//! `matcher-`), so a minimized crash fails here until it is fixed, and keeps passing after.
//! Panics that wirewatch catches itself (feed-rs under `catch_unwind`) are not failures;
//! their messages still show with `--nocapture`.
//!
//! The checks are not copied: `fuzz/src/lib.rs` is compiled into this test as a module, the
//! very code the fuzz targets call. Each input runs on its own thread with a deadline, so a
//! hang found by the fuzzer (`timeout-*`) fails here instead of stalling the suite. All
//! inputs run even when one fails; the failure message lists every one that broke.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: the fuzzer's limit is 10 s on an optimized build, tests run unoptimized.
const DEADLINE: Duration = Duration::from_secs(60);

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

/// The check of the fuzz target named by the file name's prefix.
fn check_for(name: &str) -> Option<fn(&[u8])> {
    let target = name.split_once('-').map_or(name, |(t, _)| t);
    match target {
        "parse_feed" => Some(checks::check_parse_feed),
        "html_to_text" => Some(checks::check_html_to_text),
        "matcher" => Some(checks::check_matcher),
        "extract" => Some(checks::check_extract),
        _ => None,
    }
}

/// Runs one check on its own thread, named after the input so that a stack overflow (which
/// aborts this whole test binary) still says which input it was; `Err` says why it failed
/// (panic message or hang).
fn run_with_deadline(name: &str, check: fn(&[u8]), data: Vec<u8>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    // The daemon parses on tokio blocking threads (2 MiB stacks): a recursion too deep for
    // them must fail here too. A stack overflow aborts this whole test binary.
    let spawned = std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(checks::STACK_BYTES)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| check(&data)).map_err(|panic| {
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic with a non-string payload".into())
            });
            let _ = tx.send(outcome);
        });
    if let Err(err) = spawned {
        return Err(format!("cannot spawn a thread: {err}"));
    }
    match rx.recv_timeout(DEADLINE) {
        Ok(outcome) => outcome,
        // The thread is left running; the test process ends with the failure.
        Err(_) => Err(format!("no result within {DEADLINE:?} (hang)")),
    }
}

#[test]
fn every_saved_fuzz_input_passes_its_targets_invariants() {
    let dir = regressions_dir();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "bin"))
            .collect(),
        Err(err) => panic!("cannot read {}: {err}", dir.display()),
    };
    paths.sort();

    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(check) = check_for(&name) else {
            failures.push(format!(
                "{name}: no fuzz target named by its prefix (parse_feed-, html_to_text-, matcher-, extract-)"
            ));
            continue;
        };
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {name}: {e}"));
        if let Err(why) = run_with_deadline(&name, check, data) {
            failures.push(format!("{name}: {why}"));
        }
    }

    // Straight to stderr, past the test harness's capture: the count shows in every run.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz regressions: checked {} inputs in {}, {} failed",
        paths.len(),
        dir.display(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fuzz regression inputs fail:\n  {}",
        failures.len(),
        paths.len(),
        failures.join("\n  ")
    );
}

#[test]
fn the_fuzz_watch_lists_compile() {
    // A watch-list change that no longer compiles would make every matcher input "fail".
    let specs = checks::watchlist_specs();
    assert!(
        wirewatch::matcher::Matcher::compile(&specs).is_ok(),
        "fuzz watch-lists do not compile"
    );
}
