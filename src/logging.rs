//! Logging: tracing to the terminal (without tearing the progress bars) and to the current
//! run's `runs/<id>/log.txt`, which the runner switches as runs start and end.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{IoContext, Result};
use crate::pipeline::Progress;

static RUN_LOG: Mutex<Option<File>> = Mutex::new(None);

/// Installs the global subscriber. `verbosity`: 0 = warnings only (`--quiet`), 1 = info,
/// 2 = debug, 3+ = trace. The run log always gets info and above.
pub fn init(verbosity: u8, progress: &Progress) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let terminal_filter = EnvFilter::try_from_env("RECX_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("recx={level}")));
    let terminal = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(TerminalWriter(progress.clone()))
        .with_filter(terminal_filter);
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(RunLogWriter)
        .with_filter(EnvFilter::new("recx=info"));
    let _ = tracing_subscriber::registry()
        .with(terminal)
        .with(file)
        .try_init();
}

use tracing_subscriber::Layer as _;

/// Sends log lines to `path` (appending) until [`close_run_log`].
pub fn open_run_log(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    let file = File::options()
        .create(true)
        .append(true)
        .open(path)
        .at(path)?;
    *RUN_LOG.lock().expect("log lock") = Some(file);
    Ok(())
}

pub fn close_run_log() {
    if let Some(mut f) = RUN_LOG.lock().expect("log lock").take() {
        let _ = f.flush();
    }
}

struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = RUN_LOG.lock().expect("log lock").as_mut() {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(f) = RUN_LOG.lock().expect("log lock").as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        RunLogWriter
    }
}

/// Writes above the progress bars.
#[derive(Clone)]
struct TerminalWriter(Progress);

impl Write for TerminalWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for TerminalWriter {
    type Writer = TerminalWriter;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
