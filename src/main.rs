//! The `kgitops` binary: parse arguments, run the library, map the outcome to an exit code
//! (0 no changes, 1 changes or findings, 2 error, as `kubectl diff`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kgitops::cli::Cli::parse();
    kgitops::cli::run(cli)
}
