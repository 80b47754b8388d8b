//! `tradewarden completions bash|zsh|fish`: a completion script for the shell, on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::failure::Failure;
use crate::out;

/// Arguments of `completions`.
pub use crate::cli::CompletionsArgs as Args;

/// The completion script for `shell`, for the command as the binary defines it.
pub fn script(shell: Shell) -> String {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tradewarden", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Prints the script.
pub fn run(args: Args) -> Result<(), Failure> {
    out::stdout(&script(args.shell));
    Ok(())
}
