//! The `aidmesh` command: a thin binary over the library. The commands live in
//! [`cli`]; this file only parses, sets up logging and turns the outcome into an exit
//! code.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    cli::run(args)
}
