//! `generate man|completions DIR` (hidden): the man pages and shell completions, made
//! from the same clap definitions that parse the command line, so they never drift from
//! it. `packaging/build-deb` calls it with the binary it packages.
//!
//! It owns file names and nothing else: the text comes from `clap_mangen` and
//! `clap_complete`. Output is deterministic (no date in the man pages), so a package
//! build is reproducible.

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, GenerateArgs, Generated};

/// The program's name, as the pages and completions call it.
const NAME: &str = "twilio-media-fs";

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    match args.what {
        Generated::Man => clap_mangen::generate_to(Cli::command(), &args.dir)
            .with_context(|| format!("cannot write the man pages into {}", args.dir.display())),
        Generated::Completions => {
            let mut cmd = Cli::command();
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut cmd, NAME, &args.dir)
                    .with_context(|| {
                        format!(
                            "cannot write the {shell} completions into {}",
                            args.dir.display()
                        )
                    })?;
                if shell == Shell::Bash {
                    let script = std::fs::read_to_string(&path)?;
                    std::fs::write(&path, fix_bash_states(&script))?;
                }
            }
            Ok(())
        }
    }
}

/// clap_complete (4.6.11) spells a subcommand's state two ways in bash when the program
/// name has a hyphen: the loop that tracks the words reaches `twilio__media__fs__subcmd__mount`,
/// the case arm says `twilio__subcmd__media__subcmd__fs__subcmd__mount`, so no option of a
/// subcommand ever completed (clap-rs/clap#6421). Spell the arms as the loop does; once
/// clap_complete is fixed this changes nothing.
fn fix_bash_states(script: &str) -> String {
    let escaped = NAME.replace('-', "__");
    let misspelled = NAME.replace('-', "__subcmd__");
    script.replace(
        &format!("{misspelled}__subcmd__"),
        &format!("{escaped}__subcmd__"),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn bash_arms_are_spelled_as_the_loop_spells_them() {
        let arm = "        twilio__subcmd__media__subcmd__fs__subcmd__mount)\n";
        assert_eq!(
            super::fix_bash_states(arm),
            "        twilio__media__fs__subcmd__mount)\n"
        );
        let fine = "        twilio__media__fs__subcmd__mount)\n";
        assert_eq!(super::fix_bash_states(fine), fine);
    }
}
