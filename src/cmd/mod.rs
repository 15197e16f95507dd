//! The subcommands: [`run`] dispatches a parsed command line to one module per
//! subcommand, each of which takes its parsed arguments and does the job;
//! [`init_logging`] ([`logging`]) sets up the log they write to stderr; [`terminal`]
//! escapes the network's text before it is printed.
//!
//! This is the one layer that sees both clap's types ([`crate::cli`]) and the library:
//! it turns flags into the library's configs. Nothing below it imports it, and the
//! subcommand modules do not import this file (only their siblings), so that
//! dispatching here makes no import circle.

pub mod argv;
pub mod compose;
pub mod config;
pub mod decrypt_file;
pub mod demo;
pub mod doctor;
pub mod emulator;
pub mod generate;
pub mod get;
pub mod logging;
pub mod ls;
pub mod malloc;
pub mod mount;
pub mod output;
pub mod serve;
pub mod terminal;

pub use logging::init_logging;

use crate::cli::{Cli, Command};

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::DecryptFile(args) => decrypt_file::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Get(args) => get::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Mount(args) => mount::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Emulator(args) => emulator::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Generate(args) => generate::run(args),
    }
}
