//! The `legate` binary: parse the command line and hand over to [`legate::run`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = legate::Cli::parse();
    legate::run(cli)
}
