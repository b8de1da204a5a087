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
    let lines = tracing_subscriber::fmt::layer().with_target(false);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = match format {
        LogFormat::Text => lines
            .with_ansi(ansi)
            .with_writer(move || OneLine {
                inner: std::io::stderr(),
                ansi,
            })
            .compact()
            .boxed(),
        // JSON escapes control characters itself.
        LogFormat::Json => lines
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines.with_filter(no_bodies))
        .init();
}

/// Writes each text log line with the control characters inside it escaped, so that a value from outside (a
/// release tag holding a newline, git's stderr) cannot forge or split a line. The formatter hands over one
/// whole line per write. With colours on, the formatter's own escape sequences are kept.
struct OneLine<W> {
    inner: W,
    ansi: bool,
}

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (line, end) = match text.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (text.as_ref(), ""),
        };
        let escaped = if self.ansi {
            line.split('\u{1b}')
                .map(crate::outside::one_line)
                .collect::<Vec<_>>()
                .join("\u{1b}")
        } else {
            crate::outside::one_line(line)
        };
        self.inner.write_all(format!("{escaped}{end}").as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_line_stays_one_line() {
        let mut out = OneLine {
            inner: Vec::new(),
            ansi: false,
        };
        out.write_all(b"INFO recorded release=v9\n2026 INFO forged\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out.inner).unwrap(),
            "INFO recorded release=v9\\n2026 INFO forged\n"
        );
    }
}
