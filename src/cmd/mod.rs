//! The subcommands: [`run`] dispatches a parsed command line to one module per
//! subcommand, each of which takes its parsed arguments and does the job.
//!
//! This is the one layer that sees both clap's types ([`crate::cli`]) and the library:
//! it turns flags into the library's configs. Nothing below it imports it, and the
//! subcommand modules do not import this file (only their siblings), so that
//! dispatching here makes no import circle.

pub mod argv;
pub mod config;
pub mod decrypt_file;
pub mod demo;
pub mod doctor;
pub mod emulator;
pub mod generate;
pub mod get;
pub mod ls;
pub mod mount;
pub mod output;

use crate::cli::{Cli, Command};

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::DecryptFile(args) => decrypt_file::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Get(args) => get::run(args),
        Command::Mount(args) => mount::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Emulator(args) => emulator::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Generate(args) => generate::run(args),
    }
}

/// Sets up logging to stderr: warnings by default, more with -v, RUST_LOG wins.
pub fn init_logging(verbose: u8) {
    // fuser warns about its own unmount after ours (MNT_DETACH) already happened.
    let default = match verbose {
        0 => "warn,fuser=error",
        1 => "info,fuser=error",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
