//! The libtorch backend (device `libtorch`, a `--features tch` build) computes what burn-flex
//! computes: the same checkpoints give the same logits, the same gradients, and the encoder's
//! outputs match Python transformers as the flex ones do. Compiled only in a `tch` build (CI
//! builds without libtorch): `cargo test --release --features tch --test it backend_libtorch`,
//! with the build environment of the README's "GPU and libtorch".

use std::path::{Path, PathBuf};

use burn::backend::libtorch::LibTorchDevice;
use burn::backend::{Autodiff, Flex, LibTorch};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use recx::llm::{LlamaModel, load_model, next_token_logits};

use crate::encoder_minilm;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits<B: Backend>(fixture: &str, device: &B::Device) -> Vec<f32> {
    let (model, _) = load_model::<B>(&fixtures().join(fixture), device).unwrap();
    values(next_token_logits(
        &model,
        &[vec![1, 7, 3, 12], vec![5, 2, 9, 4]],
        &[],
    ))
}

#[test]
fn the_same_checkpoint_gives_the_same_logits() {
    for fixture in ["llama_f32", "qwen2_f16", "phi3_bf16"] {
        let flex = logits::<Flex>(fixture, &Default::default());
        let torch = logits::<LibTorch>(fixture, &LibTorchDevice::Cpu);
        let diff = max_abs_diff(&flex, &torch);
        assert!(diff <= 1e-4, "{fixture}: logits differ by {diff}");
    }
}

/// The gradient of a loss over every position's logits with respect to the token embeddings
/// and the first layer's query projection.
fn gradients<B: Backend>(device: &B::Device) -> (Vec<f32>, Vec<f32>) {
    let (model, _): (LlamaModel<Autodiff<B>>, _) =
        load_model(&fixtures().join("llama_f32"), device).unwrap();
    let ids = Tensor::<Autodiff<B>, 2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(vec![1i64, 7, 3, 12, 5, 2, 9, 4], [2, 4]),
        device,
    );
    let out = model.forward(ids);
    let grads = out.powi_scalar(2).mean().backward();
    let embed = model.embed_tokens.weight.grad(&grads).unwrap();
    let q = model.layers[0]
        .self_attn
        .q_proj
        .weight
        .grad(&grads)
        .unwrap();
    (values(embed), values(q))
}

#[test]
fn the_same_loss_gives_the_same_gradients() {
    let (flex_embed, flex_q) = gradients::<Flex>(&Default::default());
    let (torch_embed, torch_q) = gradients::<LibTorch>(&LibTorchDevice::Cpu);
    let scale = flex_q.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "the query projection gets a gradient");
    for (what, a, b) in [
        ("embeddings", &flex_embed, &torch_embed),
        ("q_proj", &flex_q, &torch_q),
    ] {
        let diff = max_abs_diff(a, b);
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "{what}: gradients differ by {diff}"
        );
    }
}

#[test]
fn minilm_on_libtorch_matches_python_transformers() {
    encoder_minilm::check_golden::<LibTorch>(&LibTorchDevice::Cpu);
}

/// A view (transpose, permute, reshape, narrow) and its parent share a buffer: an element-wise
/// op on the view must leave the parent alone (tracel-ai/burn#5375, fixed in vendor/burn-tch).
#[test]
fn element_wise_ops_on_a_view_leave_its_parent_alone() {
    type T = LibTorch;
    type Op = Box<dyn Fn(Tensor<T, 3>) -> Tensor<T, 3>>;
    let d = LibTorchDevice::Cpu;
    let original: Vec<f32> = (0..24).map(|x| x as f32).collect();
    let parent = || {
        Tensor::<T, 1>::from_data(burn::tensor::TensorData::new(original.clone(), [24]), &d)
            .reshape([2, 4, 3])
    };
    let views: Vec<(&str, Op)> = vec![
        ("reshape", Box::new(|t| t.reshape([4, 2, 3]))),
        ("swap_dims", Box::new(|t| t.swap_dims(1, 2))),
        ("narrow", Box::new(|t| t.narrow(1, 1, 2))),
        ("permute", Box::new(|t| t.permute([2, 0, 1]))),
    ];
    let ops: Vec<(&str, Op)> = vec![
        ("add_scalar", Box::new(|v| v.add_scalar(100.0))),
        ("exp", Box::new(|v| v.exp())),
        (
            "mask_fill",
            Box::new(|v| {
                let m = v.clone().greater_elem(5.0);
                v.mask_fill(m, -1.0)
            }),
        ),
    ];
    for (view, make_view) in &views {
        for (op, apply) in &ops {
            let t = parent();
            let _ = apply(make_view(t.clone()));
            assert_eq!(values(t), original, "{view} then {op} changed the parent");
        }
    }
}
