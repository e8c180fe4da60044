//! Gradient checkpointing per decoder layer (`[train] gradient_checkpointing`, HF's name for
//! the same trade).
//!
//! A plain backward pass needs every intermediate of every layer, so they all live until
//! backward reaches them: for SmolLM2-135M at micro-batch 8 on real alignment records that is
//! 12 GB, mostly attention scores and softmax outputs (`[B, heads, L, L]` per layer) and MLP
//! activations. Here the forward pass runs untracked and keeps only each layer's input. The
//! backward pass then walks the layers from the last to the first: it re-runs one layer
//! tracked, back-propagates the gradient of the layer's output through it (the surrogate
//! `sum(output · gradient)` has exactly that gradient), keeps the gradient of the layer's input
//! for the next layer down, and adds the layer's parameter gradients to the step's. Peak memory
//! is the layer inputs plus one layer's graph, whatever the depth; the price is a second forward
//! pass through the layers.
//!
//! LoRA dropout draws new masks in every forward pass, and the re-run must draw the ones the
//! first pass drew: both passes reseed the backend RNG before each layer from the step's seed,
//! the micro-batch and the layer. So a checkpointed run is reproducible per seed; its dropout
//! masks differ from a plain run's (which draws one stream per step), its gradients are the
//! same in expectation and, without dropout, the same up to summation order (tested).

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};

use super::aligned::{AlignedModel, RecFeatures, padding};
use super::samples::Sample;
use crate::seed;

/// Adds the gradient of `share · loss(batch)` to `acc`, recomputing each layer's activations
/// during the backward pass (see the module docs), and returns `share · loss(batch)` (the
/// micro-batch's part of the step loss). `seed` identifies the micro-batch within the run:
/// dropout masks are drawn from it.
pub fn accumulate_checkpointed<B: AutodiffBackend>(
    model: &AlignedModel<B>,
    batch: &[&Sample],
    features: &RecFeatures<'_>,
    share: f64,
    seed: u64,
    acc: &mut GradientsAccumulator<AlignedModel<B>>,
) -> f64 {
    let device = model.llm.device();
    let reseed = |layer: usize| B::seed(&device, seed::derive(seed, "layer", &[layer as u64]));
    let (len, valid) = padding(batch);
    let mut cache = model.llm.new_cache(batch.len());
    let ctx = model.llm.step_context(&valid, &mut cache);

    // Forward, untracked (the parameters detached; dropout still active on this backend):
    // only the layers' inputs are kept.
    let untracked = model.clone().no_grad();
    let mut inputs = Vec::with_capacity(model.llm.num_layers());
    let mut x = untracked.batch_embeds(batch, len, features);
    for (i, layer) in untracked.llm.layers.iter().enumerate() {
        reseed(i);
        inputs.push(x.clone());
        x = layer.forward(x, &untracked.llm.rope, &ctx, &mut None);
    }
    drop(untracked);

    // The head: final norm, output projection, cross-entropy.
    let top = x.require_grad();
    let loss = model
        .head_loss(model.llm.norm.forward(top.clone()), batch)
        .loss
        .mul_scalar(share);
    let value = loss.clone().into_scalar().elem::<f64>();
    let grads = loss.backward();
    let mut upstream = top
        .grad(&grads)
        .expect("the last layer's output is tracked");
    acc.accumulate(model, GradientsParams::from_grads(grads, model));

    // The layers, last to first, each re-run tracked from its saved input.
    for (i, layer) in model.llm.layers.iter().enumerate().rev() {
        reseed(i);
        let input = inputs.pop().expect("one input per layer").require_grad();
        let output = layer.forward(input.clone(), &model.llm.rope, &ctx, &mut None);
        let grads = vector_jacobian(output, upstream).backward();
        upstream = input.grad(&grads).expect("the layer input is tracked");
        acc.accumulate(model, GradientsParams::from_grads(grads, model));
    }

    // The input embeddings and connectors, when any of them is trained.
    if inputs_are_trained(model, batch) {
        let embeds = model.batch_embeds(batch, len, features);
        let grads = vector_jacobian(embeds, upstream).backward();
        acc.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    value
}

/// Whether the input embeddings of `batch` depend on a trained parameter: the embedding
/// table, or a connector whose output lands on one of the batch's placeholders. (An untracked
/// tensor has no backward pass to run.)
fn inputs_are_trained<B: AutodiffBackend>(model: &AlignedModel<B>, batch: &[&Sample]) -> bool {
    let trained = |c: &Option<super::aligned::Connector<B>>| {
        c.as_ref().is_some_and(|c| c.fc1.weight.is_require_grad())
    };
    let users = trained(&model.user_connector) && batch.iter().any(|s| !s.user_tokens.is_empty());
    let items = trained(&model.item_connector) && batch.iter().any(|s| !s.item_tokens.is_empty());
    model.llm.embed_tokens.weight.is_require_grad() || users || items
}

/// `sum(output · gradient)`: a scalar whose backward pass sends `gradient` into `output`.
fn vector_jacobian<B: AutodiffBackend>(
    output: Tensor<B, 3>,
    gradient: Tensor<<B as AutodiffBackend>::InnerBackend, 3>,
) -> Tensor<B, 1> {
    (output * Tensor::<B, 3>::from_inner(gradient)).sum()
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Distribution;
    use burn::tensor::backend::Backend;

    use super::*;
    use crate::llm::LlamaConfig;
    use crate::llm::device::Cpu;
    use crate::train::{TrainSection, trainable_model};

    type B = Autodiff<Cpu>;

    const D_REC: usize = 4;

    /// Every parameter gradient in `grads`, in the model's parameter order.
    struct Collect<'a> {
        grads: &'a GradientsParams,
        out: Vec<Vec<f32>>,
        trainable: usize,
    }

    impl ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.trainable += usize::from(param.val().is_require_grad());
            if let Some(g) = self.grads.get::<Cpu, D>(param.id) {
                self.out.push(g.into_data().to_vec().expect("f32"));
            }
        }
    }

    /// The gradients, after checking that every trainable parameter has one.
    fn flatten(model: &AlignedModel<B>, grads: &GradientsParams) -> Vec<Vec<f32>> {
        let mut c = Collect {
            grads,
            out: Vec::new(),
            trainable: 0,
        };
        model.visit(&mut c);
        assert_eq!(
            c.out.len(),
            c.trainable,
            "every trained parameter has a gradient"
        );
        c.out
    }

    /// A 3-layer model: from scratch (every weight trained) or "pretrained" with LoRA on
    /// q/k/v/o and trained embeddings; both with connectors. LoRA `B` is drawn at random so
    /// that every adapter weight gets a non-zero gradient.
    fn model(pretrained: bool, dropout: f64) -> AlignedModel<B> {
        let device = Default::default();
        let config = LlamaConfig::new(48, 16, 32, 3, 4, 2).with_tie_word_embeddings(true);
        let llm = config.init::<B>(&device, 7);
        let section = TrainSection {
            lora_r: 4,
            lora_dropout: dropout,
            lora_targets: crate::llm::lora::LoraTarget::ALL.to_vec(),
            ..TrainSection::default()
        };
        let mut m = trainable_model(llm, pretrained, &section, Some(D_REC), 11);
        for layer in &mut m.llm.layers {
            let lora = layer.self_attn.lora.iter_mut();
            for a in lora.flat_map(|l| [&mut l.q, &mut l.k, &mut l.v, &mut l.o]) {
                let a = a.as_mut().expect("every target adapted");
                let shape = a.b.dims();
                a.b = Param::from_tensor(
                    Tensor::random(shape, Distribution::Normal(0.0, 0.1), &device).require_grad(),
                );
            }
        }
        m
    }

    /// Three samples of different lengths, each with a user and an item placeholder, and the
    /// recommender vectors behind them.
    struct Fixture {
        samples: Vec<Sample>,
        users: Vec<f32>,
        items: Vec<f32>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let sample = |ids: Vec<u32>, answer_from: usize, item_at: usize| Sample {
                task: "t",
                record: 0,
                loss_mask: (0..ids.len()).map(|t| t >= answer_from).collect(),
                user_tokens: vec![1],
                user_row: Some(0),
                item_tokens: vec![(item_at, 2)],
                ids,
            };
            Fixture {
                samples: vec![
                    sample(vec![3, 4, 5, 6, 7, 8, 9, 10, 11], 5, 3),
                    sample(vec![12, 13, 14, 15, 16], 3, 2),
                    sample(vec![20, 21, 22, 23, 24, 25, 26], 4, 4),
                ],
                users: (0..D_REC).map(|i| 0.1 * i as f32 - 0.2).collect(),
                items: (0..3 * D_REC).map(|i| (i as f32 * 0.37).sin()).collect(),
            }
        }

        fn features(&self) -> RecFeatures<'_> {
            RecFeatures {
                users: &self.users,
                items: &self.items,
                dim: D_REC,
            }
        }

        fn batch(&self) -> Vec<&Sample> {
            self.samples.iter().collect()
        }

        fn checkpointed(&self, model: &AlignedModel<B>, seed: u64) -> (f64, Vec<Vec<f32>>) {
            let mut acc = GradientsAccumulator::new();
            let loss = accumulate_checkpointed(
                model,
                &self.batch(),
                &self.features(),
                1.0,
                seed,
                &mut acc,
            );
            (loss, flatten(model, &acc.grads()))
        }

        /// One tracked forward and backward through every layer, drawing dropout masks as the
        /// checkpointed pass does (the backend reseeded before each layer).
        fn plain(&self, model: &AlignedModel<B>, seed: u64) -> (f64, Vec<Vec<f32>>) {
            let batch = self.batch();
            let device = model.llm.device();
            let (len, valid) = padding(&batch);
            let mut cache = model.llm.new_cache(batch.len());
            let ctx = model.llm.step_context(&valid, &mut cache);
            let mut x = model.batch_embeds(&batch, len, &self.features());
            for (i, layer) in model.llm.layers.iter().enumerate() {
                B::seed(&device, seed::derive(seed, "layer", &[i as u64]));
                x = layer.forward(x, &model.llm.rope, &ctx, &mut None);
            }
            let loss = model.head_loss(model.llm.norm.forward(x), &batch).loss;
            let value = loss.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(loss.backward(), model);
            (value, flatten(model, &grads))
        }

        /// The gradients of the stage's own (uncheckpointed) loss.
        fn stage(&self, model: &AlignedModel<B>) -> Vec<Vec<f32>> {
            let loss = model.loss(&self.batch(), &self.features()).loss;
            flatten(model, &GradientsParams::from_grads(loss.backward(), model))
        }
    }

    fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>]) {
        assert_eq!(a.len(), b.len(), "the same parameters get gradients");
        for (x, y) in a.iter().zip(b) {
            let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "every trained parameter gets a gradient");
            for (p, q) in x.iter().zip(y) {
                assert!((p - q).abs() <= 1e-4 * scale.max(1.0), "{p} vs {q}");
            }
        }
    }

    #[test]
    fn checkpointed_gradients_equal_a_plain_backward_pass() {
        let fixture = Fixture::new();
        for pretrained in [false, true] {
            for dropout in [0.0, 0.3] {
                let m = model(pretrained, dropout);
                let (loss, grads) = fixture.checkpointed(&m, 5);
                let (plain_loss, plain_grads) = fixture.plain(&m, 5);
                assert!(
                    (loss - plain_loss).abs() < 1e-5,
                    "pretrained {pretrained}, dropout {dropout}: {loss} vs {plain_loss}"
                );
                assert_close(&grads, &plain_grads);
                if dropout == 0.0 {
                    // Without dropout the stage's own loss gives the same gradients.
                    assert_close(&grads, &fixture.stage(&m));
                } else if pretrained {
                    // Only LoRA adapters have dropout.
                    let (_, other) = fixture.checkpointed(&m, 6);
                    assert!(grads != other, "another seed draws other dropout masks");
                }
                if pretrained {
                    // 3 layers × 4 adapters × (A, B), the tied embeddings, 2 connectors × 4.
                    assert_eq!(grads.len(), 3 * 8 + 1 + 8);
                }
            }
        }
    }

    /// Every trained parameter's values, in the model's parameter order.
    struct Values(Vec<Vec<f32>>);

    impl ModuleVisitor<B> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if param.val().is_require_grad() {
                self.0.push(param.val().into_data().to_vec().expect("f32"));
            }
        }
    }

    fn values(model: &AlignedModel<B>) -> Vec<Vec<f32>> {
        let mut v = Values(Vec::new());
        model.visit(&mut v);
        v.0
    }

    /// What one plain SGD step at learning rate 1 subtracts from each parameter: the step's
    /// gradient (clipping disabled), with the batch split into `parts`.
    fn sgd_step_gradient(
        fixture: &Fixture,
        pretrained: bool,
        parts: &[Vec<&Sample>],
        checkpointing: Option<u64>,
    ) -> Vec<Vec<f32>> {
        let m = model(pretrained, 0.0);
        let before = values(&m);
        let mut optim = burn::optim::SgdConfig::new().init::<B, AlignedModel<B>>();
        let step = crate::train::fit::StepSettings {
            lr: 1.0,
            max_grad_norm: 1e12,
            checkpointing,
        };
        let (after, _) =
            crate::train::fit::train_step(m, &mut optim, parts, &fixture.features(), step);
        before
            .iter()
            .zip(values(&after))
            .map(|(b, a)| b.iter().zip(&a).map(|(x, y)| x - y).collect())
            .collect()
    }

    #[test]
    fn a_steps_gradient_does_not_depend_on_how_its_batch_is_split_into_micro_batches() {
        let fixture = Fixture::new();
        let s = &fixture.samples;
        for pretrained in [false, true] {
            for checkpointing in [None, Some(5)] {
                let whole =
                    sgd_step_gradient(&fixture, pretrained, &[fixture.batch()], checkpointing);
                let split = sgd_step_gradient(
                    &fixture,
                    pretrained,
                    &[vec![&s[0]], vec![&s[1], &s[2]]],
                    checkpointing,
                );
                assert_close(&split, &whole);
            }
        }
    }
}
