//! The discriminator stage end to end (`recx run`): a tiny aligned model and the untrained
//! backbone both explain the train and valid prompts of the `synthetic` source; the classifier
//! must tell them apart (the untrained model writes noise, the aligned one the explanation
//! format it was trained on) and each explainer gets a score predictor, with every valid-split
//! prediction stored. Needs all-MiniLM-L6-v2 (`recx assets fetch minilm` or RECX_MINILM).

use crate::e2e_support::run_spec;
use crate::skip_support;

use recx::discriminator::{PREDICTIONS, Prediction};
use recx::explain::{EXPLANATIONS, ExplainSplit, Explainer, Explanation};
use recx::fsutil::read_jsonl;
use recx::store::Store;

const SPEC: &str = r#"
[experiment]
name = "discriminator-synthetic"
seeds = [5]

[data]
source = "synthetic"

[data.synthetic]
users = 160
items = 24
genres = 3
min_len = 6
max_len = 9

[recommender]
model = "sasrec"
embedding_size = 16
n_heads = 2
inner_size = 32
epochs = 4

[alignment]
mode = "both"
tasks = ["uid2next", "uidiid2binary"]
sharegpt_train = 0
sharegpt_valid = 0

[llm]
model = ""
template = "chatml"

[llm.scratch]
vocab_size = 300
hidden_size = 32
intermediate_size = 64
num_layers = 1
num_heads = 2
num_kv_heads = 1

[train]
epochs = 2
max_records = 400
valid_records = 20
batch_size = 16
micro_batch_size = 16
lr = 0.003

[eval]
max_records = 4
next_max_new_tokens = 8
title_max_new_tokens = 8

[baselines]
rows = ["random"]

[explain]
valid_records = 24
train_records = 48
min_new_tokens = 6
max_new_tokens = 16
explainers = ["aligned", "unaligned"]
splits = ["train", "valid"]

[discriminator]
enabled = true
epochs = 1
lr = 1e-4
max_len = 32
"#;

#[test]
fn the_discriminators_learn_from_train_explanations_and_score_the_valid_ones() {
    if recx::llm::assets::MINILM.find().is_none() {
        skip_support::missing(
            "all-MiniLM-L6-v2: run `recx assets fetch minilm` or set RECX_MINILM",
        );
        return;
    }
    let ran = run_spec(SPEC);
    let store = Store::open(&ran.store).unwrap();
    let run = store.runs().unwrap().pop().unwrap();
    let m = store.run_metrics(&run).unwrap();
    let scalar = |k: &str| {
        *m.scalars
            .get(k)
            .unwrap_or_else(|| panic!("no {k}; have {:?}", m.scalars.keys().collect::<Vec<_>>()))
    };

    // The explanation stage wrote both explainers on both splits.
    let stage_dir = |kind: &str| {
        let hash = &run.stages.iter().find(|(s, _)| s == kind).unwrap().1;
        store.artifact_dir(kind, hash)
    };
    let explanations: Vec<Explanation> =
        read_jsonl(&stage_dir("explain").join(EXPLANATIONS)).unwrap();
    for explainer in [Explainer::Aligned, Explainer::Unaligned] {
        for (split, n) in [(ExplainSplit::Train, 48), (ExplainSplit::Valid, 24)] {
            let count = explanations
                .iter()
                .filter(|e| e.explainer == explainer && e.split == split)
                .count();
            assert_eq!(count, n, "{explainer} {split}");
        }
    }
    assert_eq!(scalar("explain.explanations"), 24.0);
    assert_eq!(scalar("explain.explanations.unaligned.train"), 48.0);

    // The classifier: a confusion matrix over the 48 valid explanations, accuracy from it.
    let cells: f64 = ["aligned", "unaligned"]
        .iter()
        .flat_map(|t| ["aligned", "unaligned"].map(|p| format!("discriminator.confusion/{t}/{p}")))
        .map(|k| scalar(&k))
        .sum();
    assert_eq!(cells, 48.0);
    let acc = scalar("discriminator.classifier_acc");
    let diagonal = scalar("discriminator.confusion/aligned/aligned")
        + scalar("discriminator.confusion/unaligned/unaligned");
    assert!((acc - diagonal / 48.0).abs() < 1e-12);
    assert!(
        acc >= 0.9,
        "an untrained model's noise and a trained model's answers are easy to tell apart: {acc}"
    );
    assert_eq!(m.examples["discriminator.classifier_correct"].len(), 48);

    // One score predictor per explainer, with the mean-prediction reference beside it.
    for suffix in ["", ".unaligned"] {
        for k in ["predictor_mse", "predictor_mse_mean"] {
            let v = scalar(&format!("discriminator.{k}{suffix}"));
            assert!(v.is_finite() && v >= 0.0, "{k}{suffix} = {v}");
        }
        assert_eq!(
            m.examples[&format!("discriminator.predictor_se{suffix}")].len(),
            24
        );
    }
    let predictions: Vec<Prediction> =
        read_jsonl(&stage_dir("discriminator").join(PREDICTIONS)).unwrap();
    assert_eq!(predictions.len(), 48 + 2 * 24);
    assert_eq!(
        predictions
            .iter()
            .filter(|p| p.model == "predictor")
            .count(),
        48
    );
}
