//! The `twilio-media-fs` binary: parse arguments, set up logging, run, print errors
//! (escaped: they may hold what a server said).

use std::process::ExitCode;

use clap::Parser;
use twilio_media_fs::cli::Cli;

fn main() -> ExitCode {
    // Before any key, credential or plaintext is in memory.
    twilio_media_fs::harden::harden_process();
    // `mount` (fstab) runs `twilio-media-fs SOURCE MOUNTPOINT -o OPTIONS`: rewritten to
    // the `mount` subcommand before clap sees it.
    let args = match twilio_media_fs::cmd::argv::effective_args(std::env::args_os()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("twilio-media-fs: error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    twilio_media_fs::cmd::init_logging(cli.verbose);
    match twilio_media_fs::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain on one line: "what failed: why: the root cause", with
            // what a server said in it escaped.
            let err = twilio_media_fs::cmd::terminal::printable(&format!("{err:#}"));
            eprintln!("twilio-media-fs: error: {err}");
            ExitCode::FAILURE
        }
    }
}
