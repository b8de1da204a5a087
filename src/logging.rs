//! Log lines on stderr: plain text for people, JSON for CloudWatch Logs Insights.

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `RUST_LOG` overrides the level; the SDK's own chatter stays at warnings unless asked for.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_ecr=warn")
    });
    // At trace level the SDK logs response bodies, and GetAuthorizationToken's body is a registry password:
    // those events are dropped whatever RUST_LOG asks.
    let no_bodies = filter_fn(|event| {
        !(event.target().starts_with("aws_smithy") && *event.level() == tracing::Level::TRACE)
    });
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let lines = match format {
        LogFormat::Text => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .compact()
            .boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines.with_filter(no_bodies))
        .init();
}
