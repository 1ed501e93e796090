//! The `imagegate` binary: parses the command line and boots; nothing else.

#![forbid(unsafe_code)]

mod cli;

/// mimalloc instead of the system allocator: its thread-local free lists
/// serve the few small allocations of every request (buffers, headers, the
/// parse tape) more cheaply than glibc's bins (see loadtest/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(e) => {
            // One line, as the contract asks for start-up errors.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("imagegate: {e:#}");
            }
            ExitCode::from(2)
        }
    }
}

/// Starts the webhook server on a multi-threaded runtime and blocks until a
/// clean shutdown.
fn serve(args: cli::serve::ServeArgs) -> anyhow::Result<ExitCode> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(imagegate::server::run(config))?;
    Ok(ExitCode::SUCCESS)
}
