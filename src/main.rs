//! The `wirewatch` binary: parses the command line, runs the command, and maps the
//! outcome to an exit code (0 success, 1 runtime failure, 2 usage or configuration error).

use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: parsing on many threads left glibc's per-thread
/// arenas holding freed memory, and the daemon's RSS grew with it. On the in-process load
/// (20,000 real-world feeds, cold) the peak RSS was 200 MiB with glibc and 178 MiB with
/// jemalloc, with 12% less CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    wirewatch::cli::main()
}
