//! `warden completions SHELL`: the shell completion script (clap_complete),
//! generated from the same command definition the CLI parses with.

use super::exit::{Exit, EXIT_OK};
use clap::Args;
use clap_complete::Shell;
use std::io::Write;

/// `warden completions`.
#[derive(Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub(super) shell: Shell,
}

pub(super) const ABOUT: &str = "\
Print the shell completion script for warden to standard output.

  warden completions bash > ~/.local/share/bash-completion/completions/warden
  warden completions zsh > ~/.zfunc/_warden        # with fpath+=~/.zfunc before compinit
  warden completions fish > ~/.config/fish/completions/warden.fish
  warden completions powershell >> $PROFILE
  warden completions elvish >> ~/.config/elvish/rc.elv";

pub(super) fn completions(shell: Shell, mut command: clap::Command, out: &mut dyn Write) -> Exit {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "warden", &mut script);
    out.write_all(&script)?;
    Ok(EXIT_OK)
}
