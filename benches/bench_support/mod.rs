//! What the benchmarks share: running a Python peer (the interpreter from RECX_PYTHON, a clear
//! line instead of a ratio when it cannot run, the numbers it prints read back by their prefix)
//! and measuring a burn backend's matrix-product rate; the backend comes from RECX_BENCH_DEVICE.

// Each bench uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use recx::llm::device::DeviceChoice;

/// A numeric setting from the environment, else `default`.
pub fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The repository root (benchmark specs, reference scripts, the bench stores under target/).
pub fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The device the bench measures recx on: RECX_BENCH_DEVICE (`cpu`, burn-flex, by default;
/// `libtorch` in a `--features tch` build).
pub fn bench_device() -> DeviceChoice {
    let name = std::env::var("RECX_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device: DeviceChoice = name.parse().expect("RECX_BENCH_DEVICE");
    println!("recx backend: {device} (RECX_BENCH_DEVICE)");
    device
}

/// GFLOP/s of backend `B`'s f32 matmul `[m, k] × [k, n]`, the best of `tries`.
pub fn matmul_rate<B: Backend>(
    m: usize,
    k: usize,
    n: usize,
    tries: usize,
    device: &B::Device,
) -> f64 {
    let a = Tensor::<B, 2>::random([m, k], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([k, n], Distribution::Default, device);
    let mut best = f64::MAX;
    for _ in 0..tries {
        let t = Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

/// The interpreter the peers run on (`RECX_PYTHON`, else `python3`).
pub fn python() -> String {
    std::env::var("RECX_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The peer's standard output, or `None` after printing why it was not measured (`needs` says
/// which packages `scripts/install-peers.sh` installs for it).
pub fn run(mut command: Command, needs: &str) -> Option<String> {
    let python = command.get_program().to_string_lossy().into_owned();
    match command.output() {
        Ok(o) if o.status.success() => Some(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => {
            println!(
                "peer not measured: {python} failed, {} (scripts/install-peers.sh installs {needs}; set RECX_PYTHON):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            println!("peer not measured: {python}: {e} (set RECX_PYTHON)");
            None
        }
    }
}

/// The number after `prefix` on the peer's output line that starts with it.
pub fn value(stdout: &str, prefix: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("the reference prints `{prefix}`"))
}

/// Starts a new peak-RSS window for this process (Linux: writing 5 to `/proc/self/clear_refs`
/// resets `VmHWM` to the current RSS), so [`peak_rss_mb`] covers only what follows.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        println!("peak RSS not reset ({e}): it includes everything before the timed part");
    }
}

/// This process's peak resident memory in MB (`VmHWM`), when the platform reports it.
pub fn peak_rss_mb() -> Option<f64> {
    proc_status_mb("VmHWM:")
}

/// This process's resident memory now, in MB (`VmRSS`).
pub fn rss_mb() -> Option<f64> {
    proc_status_mb("VmRSS:")
}

fn proc_status_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
