//! `completions` and `man`: the shell completions and the manual pages, generated from the
//! command line's own definitions.

use std::path::Path;

use crate::failure::CliError;

/// `completions SHELL`: the completion script of `command` on standard output.
pub(super) fn completions(
    mut command: clap::Command,
    shell: clap_complete::Shell,
) -> Result<(), CliError> {
    clap_complete::generate(shell, &mut command, "jwt-auth", &mut std::io::stdout());
    Ok(())
}

/// `man`: the manual page of `command` on standard output, or with `dir` one page per
/// command written there.
pub(super) fn man(command: clap::Command, dir: Option<&Path>) -> Result<(), CliError> {
    let Some(dir) = dir else {
        return match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
            // `jwt-auth man | head`: the reader has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            done => Ok(done?),
        };
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Usage(format!("--dir {}: {e}", dir.display())))?;
    clap_mangen::generate_to(command, dir)
        .map_err(|e| CliError::Usage(format!("--dir {}: {e}", dir.display())))?;
    let pages = std::fs::read_dir(dir)?.count();
    println!("wrote {pages} manual pages into {}", dir.display());
    Ok(())
}
