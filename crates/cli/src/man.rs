//! `mtasts man` and `mtasts completions SHELL`: the manual pages and shell completions,
//! generated from the same clap definitions as `--help`, so they never drift from it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};

/// Arguments of `mtasts man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write one page per command (mtasts.1, mtasts-check.1, …) into this directory, e.g.
    /// /usr/local/share/man/man1; without it, mtasts.1 goes to standard output.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Arguments of `mtasts completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell, e.g. `mtasts completions bash > /etc/bash_completion.d/mtasts`.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

pub(crate) fn man(args: &ManArgs) -> anyhow::Result<u8> {
    let cmd = crate::Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).context("rendering the page")?;
            write_stdout(&out)?;
        }
    }
    Ok(0)
}

pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mtasts", &mut out);
    write_stdout(&out)?;
    Ok(0)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the output")
        }
        _ => Ok(()),
    }
}
