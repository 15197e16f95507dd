//! The command line as clap should see it: this process's arguments, with the
//! mount-helper form that fstab runs rewritten to the `mount` subcommand.
//!
//! It joins the two halves that must not know each other: [`crate::cli`] (which names
//! the subcommands) and [`crate::fstab`] (the pure helper-form parser, which takes the
//! subcommand names as a predicate). `main` calls it before parsing, and the background
//! `mount` calls it again to start its foreground child with the same command line.

use std::ffi::OsString;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::fstab::{OptionError, rewrite};

/// The command line to parse: `args`, with the mount-helper form
/// (`twilio-media-fs SOURCE MOUNTPOINT -o OPTIONS`, from fstab) rewritten to `mount`
/// ([`crate::fstab::rewrite`]); any other command line as it is.
pub fn effective_args(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, OptionError> {
    let command = Cli::command();
    let is_subcommand = |name: &str| {
        name == "help"
            || command
                .get_subcommands()
                .any(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
    };
    rewrite(args.into_iter().collect(), is_subcommand)
}
