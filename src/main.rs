use std::process::ExitCode;

use ecr_promote::{cli, exit, logging};

fn main() -> ExitCode {
    let cli = cli::Cli::parse_or_exit();
    let log_format = cli.log_format;
    logging::init(log_format);
    // Two workers suffice: the work is waiting on registries, and each thread costs memory.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(cli::execute(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            let code = exit::code_for(&error);
            match log_format {
                // In JSON mode the closing error is a log event too, so that every line parses.
                logging::LogFormat::Json => tracing::error!(exit_code = code, "error: {error:#}"),
                logging::LogFormat::Text => eprintln!("error: {error:#}"),
            }
            ExitCode::from(code)
        }
    }
}
