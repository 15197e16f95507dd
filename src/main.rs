//! The `twilio-media-fs` binary: parse arguments, set up logging, run, print errors.

use std::process::ExitCode;

use clap::Parser;
use twilio_media_fs::cli::Cli;

fn main() -> ExitCode {
    // Before any key, credential or plaintext is in memory.
    twilio_media_fs::harden::harden_process();
    let cli = Cli::parse();
    twilio_media_fs::cli::init_logging(cli.verbose);
    match twilio_media_fs::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain on one line: "what failed: why: the root cause".
            eprintln!("twilio-media-fs: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
