//! The `legate` binary: parse the command line and hand over to [`legate::cli::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = legate::cli::Cli::parse();
    legate::cli::run(cli)
}
