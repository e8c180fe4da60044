//! The stage contract: what a pipeline stage declares and what it gets when it runs.
//!
//! A stage is a pure function of its settings and its inputs: it reads the artifact folders of
//! the stages it depends on and writes files into its own output folder. Its settings are
//! resolved from the spec once, at plan time ([`Stage::settings`]: seeds resolved, paths
//! resolved, external files hashed), hashed into the stage hash through their
//! [`StageSettings::fingerprint`], and handed to `run` as they are: a running stage never sees
//! the raw spec, so what it does cannot depend on anything its hash does not cover. The runner
//! (`crate::runner`) decides whether a finished copy exists and moves the output into place only
//! when `run` returns `Ok`, so a stage never needs to worry about half-written outputs or
//! caching.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, WeakProgressBar};

use crate::error::{Error, Result};
use crate::spec::RawSpec;

crate::spec_enum! {
    /// The pipeline's stages, in dependency order.
    pub enum StageKind ("stage") {
        Data = "data",
        Recommender = "recommender",
        AlignmentData = "alignment-data",
        Train = "train",
        Eval = "eval",
        Baselines = "baselines",
        Explain = "explain",
        Judge = "judge",
        Discriminator = "discriminator",
    }
}

/// Every stage recx knows, in no particular order (the plan orders them by dependencies).
pub fn registry() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(crate::data::DataStage),
        Box::new(crate::recommender::RecommenderStage),
        Box::new(crate::alignment::AlignmentDataStage),
        Box::new(crate::train::TrainStage),
        Box::new(crate::eval::EvalStage),
        Box::new(crate::baselines::BaselinesStage),
        Box::new(crate::explain::ExplainStage),
        Box::new(crate::judge::JudgeStage),
        Box::new(crate::discriminator::DiscriminatorStage),
    ]
}

/// A pipeline stage.
pub trait Stage: Send + Sync {
    fn kind(&self) -> StageKind;

    /// The stages whose outputs this one reads.
    fn deps(&self) -> &'static [StageKind];

    /// The stage's settings for one run, resolved from the spec (its folder for relative paths,
    /// the run's seed for `"run"` seeds). Their fingerprint is everything that determines the
    /// stage's output besides its inputs' hashes; changing it reruns the stage.
    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved>;

    /// Whether this stage is part of the plan for `spec` (a disabled stage is skipped and so
    /// are the stages that depend on it).
    fn enabled(&self, _spec: &RawSpec) -> bool {
        true
    }

    /// Computes the outputs into `ctx.out_dir()` from `ctx.settings()`.
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()>;

    /// A short human summary of a finished output folder (e.g. a statistics table), printed
    /// by the runner after the stage is computed.
    fn summary(&self, _artifact_dir: &Path) -> Option<String> {
        None
    }
}

/// A stage's own settings type: everything its `run` reads.
pub trait StageSettings: Any + Send + Sync {
    /// What the stage hash covers: the settings that change results, with content hashes in
    /// place of file locations (moving a model folder reruns nothing).
    fn fingerprint(&self) -> serde_json::Value;
}

/// One stage's resolved settings, shared by the plan (which hashes them) and the running stage
/// (which reads them).
#[derive(Clone)]
pub struct Resolved(Arc<dyn StageSettings>);

impl Resolved {
    pub fn new(settings: impl StageSettings) -> Resolved {
        Resolved(Arc::new(settings))
    }

    pub fn fingerprint(&self) -> serde_json::Value {
        self.0.fingerprint()
    }

    /// The settings as the stage's own type.
    pub fn get<S: StageSettings>(&self) -> Result<Arc<S>> {
        let any: Arc<dyn Any + Send + Sync> = self.0.clone();
        any.downcast::<S>().map_err(|_| {
            Error::Config(format!(
                "internal: a stage was handed settings that are not {}",
                std::any::type_name::<S>()
            ))
        })
    }
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resolved({})", self.fingerprint())
    }
}

/// Receives a stage's measurements; the runner stores them against the stage hash.
pub trait Recorder {
    /// A single number, e.g. `ndcg@10` or `users`.
    fn scalar(&mut self, name: &str, value: f64);
    /// One point of a step series, e.g. the training loss per epoch.
    fn series(&mut self, name: &str, step: u64, value: f64);
    /// One evaluated example's value of a metric (for paired significance tests).
    fn example(&mut self, metric: &str, example_id: &str, value: f64);
}

/// An in-memory [`Recorder`]; the runner flushes it to the store when the stage completes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Measurements {
    pub scalars: BTreeMap<String, f64>,
    pub series: BTreeMap<String, Vec<(u64, f64)>>,
    pub examples: BTreeMap<String, Vec<(String, f64)>>,
}

impl Recorder for Measurements {
    fn scalar(&mut self, name: &str, value: f64) {
        self.scalars.insert(name.to_string(), value);
    }

    fn series(&mut self, name: &str, step: u64, value: f64) {
        self.series
            .entry(name.to_string())
            .or_default()
            .push((step, value));
    }

    fn example(&mut self, metric: &str, example_id: &str, value: f64) {
        self.examples
            .entry(metric.to_string())
            .or_default()
            .push((example_id.to_string(), value));
    }
}

/// Answers of external models kept across runs (the store's `responses` tree), so a stage that
/// pays for API calls never asks the same request twice.
pub trait ResponseCache: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<String>>;
    fn put(&self, key: &str, text: &str) -> Result<()>;
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static SCOPE: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Marks the process as interrupted (called from the Ctrl-C handler).
pub fn request_cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Clears an earlier cancel request, for a process that goes on after handling one (a library
/// caller, or a test that interrupts a stage on purpose).
pub fn clear_cancel() {
    CANCELLED.store(false, Ordering::SeqCst);
}

/// A cancel request for the work run under [`cancel_scope`] only, so a caller that runs stages
/// on several threads (tests do) can stop one and leave the others running. Any thread holding
/// a clone may cancel it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs `f` on the calling thread with `token` as a second cancel flag beside Ctrl-C's:
/// [`check_cancel`] inside `f` fails once the token is cancelled. Work `f` hands to other
/// threads (rayon) sees only the process-wide flag.
pub fn cancel_scope<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    /// Restores the outer scope even when `f` panics.
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.set(self.0.take());
        }
    }
    let _restore = Restore(SCOPE.replace(Some(token.clone())));
    f()
}

/// Whether Ctrl-C was pressed, or the token of the enclosing [`cancel_scope`] was cancelled.
pub fn cancel_requested() -> bool {
    CANCELLED.load(Ordering::SeqCst)
        || SCOPE.with_borrow(|scope| scope.as_ref().is_some_and(CancelToken::is_cancelled))
}

/// Returns `Err(Interrupted)` once Ctrl-C was pressed; long loops call this each step.
pub fn check_cancel() -> Result<()> {
    if cancel_requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Progress bars: live on a terminal; in a log (stderr redirected to a file, a Slurm job, CI)
/// a plain line per running bar at most every [`LOG_PROGRESS_EVERY`], so a long stage is never
/// silent there; nothing under `--quiet`.
///
/// Every handle also knows the stage being run and its live bars ([`Progress::snapshot`]), which
/// the runner writes beside the run for `recx runs show` in another process.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
    /// The bars created so far (finished ones are dropped as they are seen).
    bars: Arc<Mutex<Vec<WeakProgressBar>>>,
    /// Log mode: whether a reporter thread prints lines for the bars.
    logged: bool,
    /// The stage being run and when it started.
    stage: Arc<Mutex<Option<StageStart>>>,
}

/// A running stage's name and start time.
type StageStart = (String, chrono::DateTime<chrono::Utc>);

/// One running bar as `recx runs show` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BarSnapshot {
    pub message: String,
    pub pos: u64,
    pub len: u64,
    pub per_sec: f64,
    pub elapsed_s: f64,
    /// `None` before the first step or without a length.
    pub eta_s: Option<f64>,
}

impl BarSnapshot {
    fn of(bar: &ProgressBar) -> BarSnapshot {
        let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
        BarSnapshot {
            message: bar.message(),
            pos,
            len,
            per_sec: bar.per_sec(),
            elapsed_s: bar.elapsed().as_secs_f64(),
            eta_s: (pos > 0 && len > pos).then(|| bar.eta().as_secs_f64()),
        }
    }
}

impl std::fmt::Display for BarSnapshot {
    /// `alignment training: 12/64 (18.8 %), 0.41/s, elapsed 29s, eta 2m 7s`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pos, len) = (self.pos, self.len);
        write!(f, "{}: {pos}/{len}", self.message)?;
        if len > 0 {
            write!(f, " ({:.1} %)", 100.0 * pos as f64 / len as f64)?;
        }
        write!(
            f,
            ", {:.2}/s, elapsed {}",
            self.per_sec,
            indicatif::HumanDuration(Duration::from_secs_f64(self.elapsed_s))
        )?;
        if let Some(eta) = self.eta_s {
            write!(
                f,
                ", eta {}",
                indicatif::HumanDuration(Duration::from_secs_f64(eta))
            )?;
        }
        Ok(())
    }
}

/// How often a log (stderr not a terminal) gets progress lines.
pub const LOG_PROGRESS_EVERY: Duration = Duration::from_secs(30);

impl Progress {
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return Progress::with_log(None, true);
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress {
                multi: MultiProgress::new(),
                quiet,
                bars: Arc::default(),
                logged: false,
                stage: Arc::default(),
            };
        }
        Progress::with_log(Some(LOG_PROGRESS_EVERY), false)
    }

    /// Bars drawn nowhere; with `every`, a thread writes one line per running bar to stderr
    /// at that interval (log mode).
    pub fn with_log(every: Option<Duration>, quiet: bool) -> Self {
        let bars = Arc::new(Mutex::new(Vec::new()));
        if let Some(every) = every {
            let weak = Arc::downgrade(&bars);
            std::thread::spawn(move || report_progress(weak, every, &mut std::io::stderr()));
        }
        Progress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            quiet,
            bars,
            logged: every.is_some(),
            stage: Arc::default(),
        }
    }

    /// Records which stage runs now (`None` between stages).
    pub fn set_stage(&self, stage: Option<&str>) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) =
            stage.map(|s| (s.to_string(), chrono::Utc::now()));
    }

    /// The stage running now and when it started.
    pub fn stage(&self) -> Option<(String, chrono::DateTime<chrono::Utc>)> {
        self.stage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The bars still running, oldest first.
    pub fn snapshot(&self) -> Vec<BarSnapshot> {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.retain(|b| b.upgrade().is_some_and(|b| !b.is_finished()));
        bars.iter()
            .filter_map(WeakProgressBar::upgrade)
            .map(|b| BarSnapshot::of(&b))
            .collect()
    }

    pub fn hidden() -> Self {
        Progress::new(true)
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// A bar over `len` steps.
    pub fn bar(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message(message.into());
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bar.downgrade());
        bar
    }

    /// A spinner for steps of unknown length.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_message(message.into());
        bar
    }

    /// Runs `f` with the bars hidden, so terminal output does not tear them.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Prints a line above the bars (or nothing when quiet).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.quiet {
        } else if self.logged {
            eprintln!("{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }
}

/// Log mode's reporter: every `every`, one line per bar that is still running, until every
/// [`Progress`] handle is gone.
fn report_progress(
    bars: std::sync::Weak<Mutex<Vec<WeakProgressBar>>>,
    every: Duration,
    out: &mut dyn std::io::Write,
) {
    loop {
        std::thread::sleep(every);
        let Some(bars) = bars.upgrade() else { return };
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.retain(|b| b.upgrade().is_some_and(|b| !b.is_finished()));
        for bar in bars.iter().filter_map(WeakProgressBar::upgrade) {
            let _ = writeln!(out, "{}", progress_line(&bar));
        }
    }
}

fn progress_line(bar: &ProgressBar) -> String {
    BarSnapshot::of(bar).to_string()
}

/// What a running stage can see and use.
pub struct StageContext<'a> {
    /// The stage's settings, resolved at plan time.
    settings: Resolved,
    pub(crate) out_dir: PathBuf,
    pub(crate) inputs: BTreeMap<StageKind, PathBuf>,
    pub recorder: &'a mut dyn Recorder,
    pub progress: &'a Progress,
    /// The store's response cache; `None` when a stage runs outside the runner.
    pub cache: Option<&'a dyn ResponseCache>,
}

impl<'a> StageContext<'a> {
    /// Builds a context directly (tests and benchmarks that run one stage by hand: resolve the
    /// settings with [`Stage::settings`] first).
    pub fn new(
        settings: Resolved,
        out_dir: PathBuf,
        inputs: BTreeMap<StageKind, PathBuf>,
        recorder: &'a mut dyn Recorder,
        progress: &'a Progress,
    ) -> Self {
        StageContext {
            settings,
            out_dir,
            inputs,
            recorder,
            progress,
            cache: None,
        }
    }

    /// Gives the stage a response cache.
    pub fn with_cache(mut self, cache: &'a dyn ResponseCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The folder to write outputs into. It is private to this attempt of the stage except for
    /// its `checkpoints/` subfolder, which survives an interrupted attempt so a stage can resume.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The finished artifact folder of a dependency.
    pub fn input(&self, stage: StageKind) -> &Path {
        self.inputs
            .get(&stage)
            .unwrap_or_else(|| panic!("stage {stage} is not a declared dependency"))
    }

    /// The stage's settings as its own type.
    pub fn settings<S: StageSettings>(&self) -> Result<Arc<S>> {
        self.settings.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_mode_prints_running_bars_until_the_handles_are_gone() {
        let bars = Arc::new(Mutex::new(Vec::new()));
        let (running, finished) = (ProgressBar::hidden(), ProgressBar::hidden());
        running.set_length(10);
        running.set_message("alignment training");
        running.set_position(3);
        finished.set_message("done already");
        finished.finish();
        bars.lock()
            .unwrap()
            .extend([running.downgrade(), finished.downgrade()]);
        let weak = Arc::downgrade(&bars);
        let reporter = std::thread::spawn(move || {
            let mut out = Vec::new();
            report_progress(weak, Duration::from_millis(20), &mut out);
            String::from_utf8(out).unwrap()
        });
        std::thread::sleep(Duration::from_millis(90));
        drop(bars);
        let text = reporter.join().unwrap();
        assert!(
            text.lines().count() >= 2,
            "a line per interval while running: {text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with("alignment training: 3/10 (30.0 %)"))
        );
        assert!(!text.contains("done already"));
    }

    #[test]
    fn a_cancel_scope_stops_only_the_work_under_it() {
        let token = CancelToken::default();
        let remote = token.clone();
        std::thread::spawn(move || remote.cancel()).join().unwrap();
        assert!(matches!(
            cancel_scope(&token, check_cancel),
            Err(Error::Interrupted)
        ));
        assert!(
            check_cancel().is_ok(),
            "outside the scope nothing is cancelled"
        );
        let other = std::thread::spawn(move || cancel_scope(&CancelToken::default(), check_cancel));
        assert!(other.join().unwrap().is_ok());
    }
}
