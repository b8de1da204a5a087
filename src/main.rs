use std::process::ExitCode;

use ecr_promote::{cli, commands, exit, logging, outside};

fn main() -> ExitCode {
    let cli = cli::Cli::parse_or_exit();
    let log_format = cli.log_format;
    logging::init(log_format);
    // One thread: the work is waiting on registries and AWS, and the only CPU-heavy part (hashing blobs in
    // flight) is a fraction of what the registries spend on the same bytes. Measured against two workers
    // (bench/RESULTS.md): a cold copy costs ~15% less CPU and ~3 MiB less memory, with no cross-thread
    // wake-ups and one malloc arena.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(commands::execute(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            let code = exit::code_for(&error);
            match log_format {
                // In JSON mode the closing error is a log event too, so that every line parses.
                logging::LogFormat::Json => tracing::error!(exit_code = code, "error: {error:#}"),
                // One line, whatever the error quotes (a tag from the queue, git's stderr, a registry's words).
                logging::LogFormat::Text => eprintln!(
                    "error: {}",
                    outside::one_line(&outside::scrub(&format!("{error:#}"), &[]))
                ),
            }
            ExitCode::from(code)
        }
    }
}
