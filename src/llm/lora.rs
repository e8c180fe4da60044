//! LoRA adapters on the attention projections (spec §4.6), and merging them back.
//!
//! An adapter adds `dropout(x)·A·B·(alpha/r)` to a frozen projection `x·W`. As in PEFT, `A`
//! starts uniform in ±1/√in (kaiming-uniform with a = √5) and `B` at zero, so a freshly
//! attached adapter leaves the model's outputs unchanged. [`merge_lora`] folds the trained
//! product into `W` (the original's `merge_and_unload`, §4.8), which gives a plain model that
//! the HF writer and every inference path already understand.
//!
//! Which projections get an adapter is part of the configuration: the paper's run (PEFT's
//! default for LLaMA) adapts q and v only, the later RecAI code q, k, v and o.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::LlamaModel;

crate::spec_enum! {
    /// An attention projection that gets a LoRA adapter (`train.lora_targets`).
    pub enum LoraTarget ("LoRA target") {
        Q = "q",
        K = "k",
        V = "v",
        O = "o",
    }
}

impl LoraTarget {
    /// The paper's targets: PEFT's default for LLaMA, `q_proj` and `v_proj` (spec §4.6 [v1]).
    pub const PAPER: [LoraTarget; 2] = [LoraTarget::Q, LoraTarget::V];
}

/// LoRA hyper-parameters; the defaults are the paper's (spec §4.6 [v1]: r 8, alpha 32,
/// dropout 0.1 on q and v).
#[derive(Config, Debug, PartialEq)]
pub struct LoraConfig {
    #[config(default = 8)]
    pub r: usize,
    #[config(default = 32.0)]
    pub alpha: f64,
    #[config(default = 0.1)]
    pub dropout: f64,
    /// The adapted projections (any order; each at most once).
    #[config(default = "LoraTarget::PAPER.to_vec()")]
    pub targets: Vec<LoraTarget>,
}

impl LoraConfig {
    pub fn scaling(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// Whether `target` gets an adapter.
    pub fn adapts(&self, target: LoraTarget) -> bool {
        self.targets.contains(&target)
    }

    /// An adapter for a `d_in → d_out` projection, `A` drawn from `rng`.
    pub fn init<B: Backend>(
        &self,
        d_in: usize,
        d_out: usize,
        rng: &mut ChaCha8Rng,
        device: &B::Device,
    ) -> Lora<B> {
        let bound = 1.0 / (d_in as f32).sqrt();
        let a: Vec<f32> = (0..d_in * self.r)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Lora {
            a: Param::from_tensor(Tensor::from_data(
                TensorData::new(a, [d_in, self.r]),
                device,
            )),
            b: Param::from_tensor(Tensor::zeros([self.r, d_out], device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            scaling: self.scaling(),
        }
    }
}

/// One adapter: the low-rank update of one projection.
#[derive(Module, Debug)]
pub struct Lora<B: Backend> {
    /// `[d_in, r]`
    pub a: Param<Tensor<B, 2>>,
    /// `[r, d_out]`
    pub b: Param<Tensor<B, 2>>,
    pub dropout: Dropout,
    pub scaling: f64,
}

impl<B: Backend> Lora<B> {
    /// `[B, L, d_in]` → the update `[B, L, d_out]` (dropout is active only under autodiff).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.dropout.forward(x);
        x.matmul(self.a.val().unsqueeze())
            .matmul(self.b.val().unsqueeze())
            .mul_scalar(self.scaling)
    }

    /// The dense update `A·B·scaling` `[d_in, d_out]`, in burn's `Linear` weight layout.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scaling)
    }
}

/// The adapters of one attention block; a projection that is not a target has none.
#[derive(Module, Debug)]
pub struct AttentionLora<B: Backend> {
    pub q: Option<Lora<B>>,
    pub k: Option<Lora<B>>,
    pub v: Option<Lora<B>>,
    pub o: Option<Lora<B>>,
}

fn dims<B: Backend>(lin: &Linear<B>) -> (usize, usize) {
    let [d_in, d_out] = lin.weight.dims();
    (d_in, d_out)
}

/// Freezes every weight of `model` and attaches fresh adapters to the configured projections
/// of each attention block (in the order q, k, v, o, which fixes the random draws).
/// Only the adapters require gradients afterwards; callers unfreeze whatever else they train.
pub fn attach_lora<B: Backend>(
    model: LlamaModel<B>,
    config: &LoraConfig,
    seed: u64,
) -> LlamaModel<B> {
    let mut model = model.no_grad();
    let device = model.device();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for layer in &mut model.layers {
        let attn = &mut layer.self_attn;
        let mut make = |target: LoraTarget, lin: &Linear<B>| {
            config.adapts(target).then(|| {
                let (i, o) = dims(lin);
                config.init::<B>(i, o, &mut rng, &device)
            })
        };
        attn.lora = Some(AttentionLora {
            q: make(LoraTarget::Q, &attn.q_proj),
            k: make(LoraTarget::K, &attn.k_proj),
            v: make(LoraTarget::V, &attn.v_proj),
            o: make(LoraTarget::O, &attn.o_proj),
        });
    }
    model
}

/// Folds every adapter into its projection weight and removes the adapters.
pub fn merge_lora<B: Backend>(mut model: LlamaModel<B>) -> LlamaModel<B> {
    for layer in &mut model.layers {
        let attn = &mut layer.self_attn;
        let Some(lora) = attn.lora.take() else {
            continue;
        };
        for (lin, adapter) in [
            (&mut attn.q_proj, &lora.q),
            (&mut attn.k_proj, &lora.k),
            (&mut attn.v_proj, &lora.v),
            (&mut attn.o_proj, &lora.o),
        ] {
            let Some(adapter) = adapter else { continue };
            let merged = lin.weight.val() + adapter.delta();
            lin.weight = Param::from_tensor(merged.detach());
        }
    }
    model
}

/// Parameter counts: `(trainable, total)`.
pub fn count_params<B: Backend, M: Module<B>>(module: &M) -> (usize, usize) {
    use burn::module::ModuleVisitor;
    struct Count {
        trainable: usize,
        total: usize,
    }
    impl<B: Backend> ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let n = param.shape().num_elements();
            self.total += n;
            if param.is_require_grad() {
                self.trainable += n;
            }
        }
    }
    let mut c = Count {
        trainable: 0,
        total: 0,
    };
    module.visit(&mut c);
    (c.trainable, c.total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::LlamaConfig;
    use burn::backend::Flex;
    use burn::tensor::Int;

    fn ids() -> Tensor<Flex, 2, Int> {
        Tensor::from_data(
            TensorData::new(vec![1i64, 5, 9, 3], [1, 4]),
            &Default::default(),
        )
    }

    #[test]
    fn fresh_adapters_change_nothing_and_merging_keeps_outputs() {
        let config = LlamaConfig::new(32, 16, 24, 2, 4, 2);
        let base = config.init::<Flex>(&Default::default(), 7);
        let before = base.forward(ids());
        let all = vec![LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O];
        let config = LoraConfig::new()
            .with_r(4)
            .with_dropout(0.0)
            .with_targets(all);
        let mut adapted = attach_lora(base, &config, 1);
        let same = adapted.forward(ids());
        before
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&same.into_data(), Default::default());

        // Give the B matrices values, as training would; merged and unmerged must agree.
        for layer in &mut adapted.layers {
            let lora = layer.self_attn.lora.as_mut().unwrap();
            for l in [&mut lora.q, &mut lora.k, &mut lora.v, &mut lora.o]
                .into_iter()
                .flatten()
            {
                let [r, o] = l.b.dims();
                l.b =
                    Param::from_tensor(Tensor::ones([r, o], &Default::default()).mul_scalar(0.05));
            }
        }
        let with_lora = adapted.forward(ids());
        assert!(
            (with_lora.clone() - before).abs().max().into_scalar() > 1e-4,
            "trained adapters must change the output"
        );
        let merged = merge_lora(adapted);
        assert!(merged.layers.iter().all(|l| l.self_attn.lora.is_none()));
        with_lora
            .into_data()
            .assert_approx_eq::<f32>(&merged.forward(ids()).into_data(), Default::default());
    }

    fn trainable_with(targets: &[LoraTarget]) -> (usize, usize) {
        let config = LlamaConfig::new(32, 16, 24, 1, 4, 2);
        type Ad = burn::backend::Autodiff<Flex>;
        let model = attach_lora(
            config.init::<Ad>(&Default::default(), 7),
            &LoraConfig::new().with_r(2).with_targets(targets.to_vec()),
            1,
        );
        count_params::<Ad, _>(&model)
    }

    #[test]
    fn only_the_targets_adapters_are_trainable_after_attaching() {
        use LoraTarget::*;
        // Width 16, 4 heads of 4, 2 KV heads: q 16→16, k 16→8, v 16→8, o 16→16; r = 2: A + B.
        let (trainable, total) = trainable_with(&[Q, K, V, O]);
        assert_eq!(trainable, 2 * (16 + 16) + 2 * (16 + 8) * 2 + 2 * (16 + 16));
        assert!(total > trainable);
        let (trainable, _) = trainable_with(&LoraTarget::PAPER);
        assert_eq!(trainable, 2 * (16 + 16) + 2 * (16 + 8));
        let (trainable, _) = trainable_with(&[O]);
        assert_eq!(trainable, 2 * (16 + 16));
    }

    #[test]
    fn defaults_are_the_papers() {
        let c = LoraConfig::new();
        assert_eq!((c.r, c.alpha, c.dropout), (8, 32.0, 0.1));
        assert_eq!(c.targets, vec![LoraTarget::Q, LoraTarget::V]);
        assert!(c.adapts(LoraTarget::V) && !c.adapts(LoraTarget::K));
    }
}
