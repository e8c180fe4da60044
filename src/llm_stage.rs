//! What the LLM stages (train, eval, explain, baselines) share: running a stage body on the
//! device `llm.device` names, generic over the burn backend, and seeded subsampling of records. It
//! lives beside the stages so that no stage imports another for it.

use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::llm::{BackendTask, DeviceChoice};
use crate::pipeline::StageContext;

/// The body of an LLM stage, generic over the burn backend.
pub trait LlmStageBody {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()>;
}

/// Runs an LLM stage's body on `device` (`llm.device`: `cpu`, `libtorch`, `cuda`, `cuda:N`).
pub fn run_on_llm_device<S: LlmStageBody>(ctx: &mut StageContext<'_>, device: &str) -> Result<()> {
    struct Task<'a, 'b, S> {
        ctx: &'a mut StageContext<'b>,
        body: std::marker::PhantomData<S>,
    }
    impl<S: LlmStageBody> BackendTask for Task<'_, '_, S> {
        type Output = ();
        fn run<B: Backend>(self, device: B::Device) -> Result<()> {
            S::run_on::<B>(self.ctx, &device)
        }
    }
    let device: DeviceChoice = device.parse()?;
    device.run(Task::<S> {
        ctx,
        body: std::marker::PhantomData,
    })
}

/// `n` records drawn without replacement (in file order), or all when `n` is 0 or too large.
pub fn subsample<T>(records: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    if n == 0 || n >= records.len() {
        return records;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keep = rand::seq::index::sample(&mut rng, records.len(), n).into_vec();
    keep.sort_unstable();
    let mut slots: Vec<Option<T>> = records.into_iter().map(Some).collect();
    keep.into_iter()
        .map(|i| slots[i].take().expect("indices are distinct"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_keeps_file_order_and_is_seeded() {
        let a = subsample((0..100).collect::<Vec<_>>(), 10, 5);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, subsample((0..100).collect::<Vec<_>>(), 10, 5));
        assert_ne!(a, subsample((0..100).collect::<Vec<_>>(), 10, 6));
        assert_eq!(subsample(vec![1, 2], 0, 1), vec![1, 2]);
    }
}
