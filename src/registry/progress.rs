//! How far a copy has got: bytes moved of bytes to move, shared between the copy and whoever shows it (a
//! progress bar at a terminal, a log line every few seconds in CodeBuild). Blobs that are mounted or already
//! there move no bytes and are not counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    /// Bytes the copy has to move, as far as it knows yet.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Bytes handed to the target so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub(super) fn add_total(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn add_done(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A failed attempt's bytes: the blob starts again from its first byte.
    pub(super) fn take_back(&self, bytes: u64) {
        self.done
            .fetch_sub(bytes.min(self.done()), Ordering::Relaxed);
    }

    /// Logs, every `interval`, how far the copy of `what` has got; never returns (select it against the copy).
    /// The first line comes after one interval, so a short copy says nothing.
    pub async fn log_every(&self, what: &str, interval: Duration) {
        let started = Instant::now();
        loop {
            tokio::time::sleep(interval).await;
            let (done, total) = (self.done(), self.total());
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                image = what,
                bytes_done = done,
                bytes_total = total,
                percent = percent(done, total),
                bytes_per_second = (done as f64 / seconds) as u64,
                "copying: {} of {} ({}%) at {}/s",
                size(done),
                size(total),
                percent(done, total),
                size((done as f64 / seconds) as u64)
            );
        }
    }
}

fn percent(done: u64, total: u64) -> u64 {
    (done * 100).checked_div(total).unwrap_or(100)
}

/// `12.3 MiB`, `512 B`: a size a person reads at a glance.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages_read_at_a_glance() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(244 << 20), "244.0 MiB");
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(0, 0), 100);
    }

    #[test]
    fn a_failed_attempt_gives_its_bytes_back() {
        let progress = Progress::default();
        progress.add_total(100);
        progress.add_done(60);
        progress.take_back(60);
        progress.add_done(100);
        assert_eq!((progress.done(), progress.total()), (100, 100));
    }
}
