//! The `wirewatch` binary: parses the command line, runs the command, and maps the
//! outcome to an exit code (0 success, 1 runtime failure, 2 usage or configuration error).

use std::process::ExitCode;

fn main() -> ExitCode {
    wirewatch::cli::main()
}
