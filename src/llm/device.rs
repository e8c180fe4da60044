//! Choosing the compute device from a spec string (`cpu`, `libtorch`, `cuda:N`).
//!
//! The model code is generic over `B: Backend`; this is the one place that maps a string to a
//! concrete backend. Callers package their work as a [`BackendTask`] so the same code runs on
//! burn's flex CPU backend or, in a `--features tch` build, on libtorch's CPU kernels through
//! burn-tch (`libtorch`), or, in a `--features cuda` build, on burn-cuda. The device is part of
//! every stage's settings, so results from different backends never share a cache entry.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// A device named in a spec or on the command line. (Serialized as `"Cpu"` / `"LibTorch"` /
/// `{"Cuda": n}`, which is part of the recommender stage's hash.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// burn's flex backend: pure Rust, in every build.
    Cpu,
    /// libtorch on the CPU (burn-tch), in a `--features tch` build.
    LibTorch,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "cpu" => return Ok(DeviceChoice::Cpu),
            "libtorch" => return Ok(DeviceChoice::LibTorch),
            _ => {}
        }
        let index = match s {
            "cuda" => Some(0),
            _ => s.strip_prefix("cuda:").and_then(|n| n.parse().ok()),
        };
        index.map(DeviceChoice::Cuda).ok_or_else(|| {
            Error::Config(format!(
                "device `{s}`: expected `cpu`, `libtorch` or `cuda:N` (e.g. `cuda:0`)"
            ))
        })
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::LibTorch => write!(f, "libtorch"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Work that runs on whichever backend the device choice selects.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, device: B::Device) -> Result<Self::Output>;
}

impl DeviceChoice {
    /// Runs `task` on this device; a libtorch or CUDA choice in a build without its feature is
    /// an error that says how to get it.
    pub fn run<T: BackendTask>(self, task: T) -> Result<T::Output> {
        match self {
            DeviceChoice::Cpu => task.run::<Cpu>(Default::default()),
            DeviceChoice::LibTorch => run_libtorch(task),
            DeviceChoice::Cuda(index) => run_cuda(task, index),
        }
    }
}

#[cfg(feature = "tch")]
fn run_libtorch<T: BackendTask>(task: T) -> Result<T::Output> {
    task.run::<burn::backend::LibTorch>(burn::backend::libtorch::LibTorchDevice::Cpu)
}

#[cfg(not(feature = "tch"))]
fn run_libtorch<T: BackendTask>(_task: T) -> Result<T::Output> {
    Err(Error::Config(
        "device `libtorch`: this recx binary was built without libtorch; rebuild with \
         `cargo build --release --features tch` (libtorch 2.9: see README, Performance) or use \
         device `cpu`"
            .into(),
    ))
}

#[cfg(feature = "cuda")]
fn run_cuda<T: BackendTask>(task: T, index: usize) -> Result<T::Output> {
    task.run::<burn::backend::Cuda>(burn::backend::cuda::CudaDevice::new(index))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<T: BackendTask>(_task: T, index: usize) -> Result<T::Output> {
    Err(Error::Config(format!(
        "device `cuda:{index}`: this recx binary was built without CUDA support; rebuild with \
         `cargo build --release --features cuda` or use device `cpu`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that does nothing, to see which devices a build can run.
    #[allow(dead_code)] // unused in a build with both features
    struct Nothing;
    impl BackendTask for Nothing {
        type Output = ();
        fn run<B: Backend>(self, _device: B::Device) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "libtorch".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::LibTorch
        );
        for d in ["cpu", "libtorch", "cuda:1"] {
            assert_eq!(d.parse::<DeviceChoice>().unwrap().to_string(), d);
        }
        let err = "gpu0".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(
            err.contains("cpu") && err.contains("libtorch") && err.contains("cuda:N"),
            "{err}"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let err = DeviceChoice::Cuda(0).run(Nothing).unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn libtorch_without_the_feature_says_how_to_get_it() {
        let err = DeviceChoice::LibTorch.run(Nothing).unwrap_err().to_string();
        assert!(err.contains("--features tch"), "{err}");
    }
}
