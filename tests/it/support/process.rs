//! Server processes on free loopback ports, killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Another process can take the port between our probe and the server's bind; a fresh port
/// then usually works.
const STARTUP_ATTEMPTS: usize = 3;

/// A running server process; dropping it kills the process.
pub struct Process {
    child: Child,
    pub port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free loopback port")
        .port()
}

/// What to start and how to tell that it is serving.
pub struct Launch<'a> {
    pub name: &'a str,
    /// Shown when the program is not installed.
    pub install_hint: &'a str,
    /// Where the server writes its output; shown when it fails to start.
    pub log: PathBuf,
    /// The command for a given port; its output should go to `log`.
    pub command: &'a dyn Fn(u16) -> Command,
}

impl Launch<'_> {
    /// Starts the server on a free port and waits until `ready(port)` says it serves.
    pub async fn start(&self, ready: impl AsyncFn(u16) -> bool) -> Process {
        for _ in 0..STARTUP_ATTEMPTS {
            let port = free_port();
            let child = match (self.command)(port).spawn() {
                Ok(child) => child,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                    "{} is not installed ({error}); {}",
                    self.name, self.install_hint
                ),
                Err(error) => panic!("cannot start {}: {error}", self.name),
            };
            let mut process = Process { child, port };
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Some(status) = process.child.try_wait().expect("poll the server") {
                    eprintln!(
                        "{} exited with {status} on port {port}; retrying on another port:\n{}",
                        self.name,
                        read_log(&self.log)
                    );
                    break;
                }
                if ready(port).await {
                    return process;
                }
                if Instant::now() > deadline {
                    panic!(
                        "{} did not serve on port {port} within {STARTUP_TIMEOUT:?}:\n{}",
                        self.name,
                        read_log(&self.log)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!(
            "{} failed to start {STARTUP_ATTEMPTS} times:\n{}",
            self.name,
            read_log(&self.log)
        );
    }
}

pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| format!("(no log at {path:?}: {error})"))
}

/// Opens `path` for a child's output.
pub fn log_file(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|error| panic!("create {path:?}: {error}"))
}
