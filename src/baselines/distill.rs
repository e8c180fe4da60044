//! The "SASRec (distilled)" row (paper §8.1, as in EMKD): a fresh SASRec of the target's
//! architecture trained on the target's training examples to match the target's distribution
//! over all items, with the KL divergence `KL(p_target ‖ p_student)` of the softmaxed full-item
//! logits (temperature `distill_temperature`, loss scaled by T² as usual) as its only loss. It
//! then answers the same validation records as every other row:
//! - T1: its top 5 items, history and padding excluded (as the target's top file is made);
//! - T2: the candidates sorted by its scores;
//! - T3: "Yes" when the item is in its own top 20 %, the rule the target's labels come from.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor, TensorData};

use crate::alignment::Task;
use crate::alignment::record::TaskRecord;
use crate::data::Dataset;
use crate::error::{Error, IoContext, Result};
use crate::eval::{Scored, label_titles, metrics};
use crate::pipeline::{Progress, check_cancel};
use crate::recommender::model::RecModel;
use crate::recommender::samples::{Examples, Query};
use crate::recommender::sasrec::{SasRec, SasRecConfig};
use crate::recommender::{MODEL_CONFIG, SavedConfig, TrainedRecommender};
use crate::seed;
use crate::training::{
    adamw, clip_global_norm, epoch_order, lock_backend_rng, seed_step, seeded_init,
};

/// The row's label.
pub const LABEL: &str = "SASRec-distilled";

/// How the student learns.
#[derive(Debug, Clone, PartialEq)]
pub struct DistillSettings {
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub temperature: f64,
    pub seed: u64,
}

/// The target's SASRec architecture, from its artifact folder.
fn target_config(rec_dir: &Path) -> Result<SasRecConfig> {
    let path = rec_dir.join(MODEL_CONFIG);
    let text = std::fs::read_to_string(&path).at(&path)?;
    match serde_json::from_str(&text).map_err(|e| Error::model_file(&path, e.to_string()))? {
        SavedConfig::Sasrec(c) => Ok(c),
        SavedConfig::Mf(_) => Err(Error::Config(
            "baselines row distilled-sasrec distils a SASRec target; this target is MF".into(),
        )),
    }
}

/// Column 0 is padding: no probability for it in either distribution.
fn mask_padding<B: Backend>(scores: Tensor<B, 2>) -> Tensor<B, 2> {
    let [b, n] = scores.dims();
    let mut m = vec![0.0f32; n];
    m[0] = -1e9;
    let mask = Tensor::<B, 1>::from_data(TensorData::new(m, [n]), &scores.device())
        .reshape([1, n])
        .expand([b, n]);
    scores + mask
}

/// Trains the student on the target's full-item distributions; returns it for inference.
pub fn distil<B: AutodiffBackend>(
    rec_dir: &Path,
    ds: &Dataset,
    s: &DistillSettings,
    progress: &Progress,
    device: &B::Device,
) -> Result<SasRec<B::InnerBackend>> {
    let cfg = target_config(rec_dir)?;
    let teacher = TrainedRecommender::<B::InnerBackend>::load(rec_dir, device)?;
    let teacher_items = teacher.item_table().transpose();
    let ex = Examples::new(ds);
    let mut student: SasRec<B> =
        seeded_init::<B, _>(device, seed::derive(s.seed, "distill.init", &[]), |d| {
            cfg.init(d)
        });
    let _guard = lock_backend_rng();
    let mut optim = adamw::<B, SasRec<B>>();
    let t = s.temperature;
    let steps = ex.train.len().div_ceil(s.batch_size);
    for epoch in 1..=s.epochs {
        let order = epoch_order(ex.train.len(), s.seed, epoch);
        let bar = progress.bar(steps as u64, format!("distil epoch {epoch}"));
        for (step, chunk) in order.chunks(s.batch_size).enumerate() {
            check_cancel()?;
            seed_step::<B>(device, s.seed, epoch, step);
            let queries: Vec<Query<'_>> = chunk.iter().map(|&i| ex.train[i].query).collect();
            let target_logits = teacher
                .user_embeddings(&queries, device)
                .matmul(teacher_items.clone());
            let p = softmax(mask_padding(target_logits).div_scalar(t), 1);
            let p = Tensor::<B, 2>::from_inner(p);
            let logits = student
                .user_embeddings(&queries, device)
                .matmul(RecModel::item_table(&student).transpose());
            let log_q = log_softmax(mask_padding(logits).div_scalar(t), 1);
            let log_p = p.clone().clamp_min(1e-12).log();
            let kl = (p * (log_p - log_q)).sum_dim(1).mean().mul_scalar(t * t);
            let value: f64 = kl.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    what: format!("distillation KL at epoch {epoch}, batch {step}"),
                    value,
                });
            }
            let mut grads = GradientsParams::from_grads(kl.backward(), &student);
            clip_global_norm::<B, SasRec<B>>(&student, &mut grads, 1.0);
            student = optim.step(s.lr, student, grads);
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    Ok(student.valid())
}

/// The student's scores over all item rows for each record's user state (its full history
/// before the record's item, as the target saw it), with history and padding at −∞.
fn record_scores<B: Backend>(
    student: &SasRec<B>,
    records: &[&TaskRecord],
    ds: &Dataset,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let histories: Vec<&[u32]> = records
        .iter()
        .map(|r| match (r.uid, u32::try_from(r.iid)) {
            (Some(uid), Ok(iid)) => ds.history_before_first(uid, iid),
            (Some(uid), Err(_)) => ds.sequence(uid),
            _ => &[],
        })
        .collect();
    let queries: Vec<Query<'_>> = records
        .iter()
        .zip(&histories)
        .map(|(r, h)| Query {
            uid: r.uid.unwrap_or(0),
            history: h,
        })
        .collect();
    let mut out = Vec::with_capacity(records.len());
    crate::recommender::train::for_each_score_row(student, &queries, 256, device, |i, row| {
        let mut s = row.to_vec();
        s[0] = f32::NEG_INFINITY;
        for &h in histories[i] {
            s[h as usize] = f32::NEG_INFINITY;
        }
        out.push(s);
    });
    out
}

/// Item ids by descending score (ties by id), −∞ left out.
fn ranked(scores: &[f32]) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..scores.len() as u32)
        .filter(|&i| scores[i as usize] > f32::NEG_INFINITY)
        .collect();
    ids.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    ids
}

/// The student's answers to `task`'s records, scored by the evaluation metrics. `None` for
/// tasks the paper has no number of this row for.
pub fn answer<B: Backend>(
    student: &SasRec<B>,
    task: Task,
    records: &[&TaskRecord],
    ds: &Dataset,
    sep: &str,
    device: &B::Device,
) -> Option<Vec<Scored>> {
    if !matches!(
        task,
        Task::Uid2Next | Task::UidIid2Rank | Task::UidIid2Binary
    ) {
        return None;
    }
    let scores = record_scores(student, records, ds, device);
    let title = |i: u32| ds.title(i).to_string();
    Some(
        records
            .iter()
            .zip(&scores)
            .map(|(r, s)| match task {
                Task::Uid2Next => {
                    let top: Vec<String> = ranked(s).into_iter().take(5).map(title).collect();
                    let (hit, ndcg) = metrics::hit_ndcg_at_k(&top, &r.answer, 5);
                    Scored {
                        predictions: top,
                        values: vec![("hit@5", hit), ("ndcg@5", ndcg)],
                    }
                }
                Task::UidIid2Rank => {
                    let mut order = r.candidates.clone();
                    order.sort_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]));
                    let text = order
                        .iter()
                        .map(|&i| title(i))
                        .collect::<Vec<_>>()
                        .join(sep);
                    let ndcg = metrics::ranking_ndcg(&text, &label_titles(r, ds), sep);
                    Scored {
                        predictions: vec![text],
                        values: vec![("ndcg@5", ndcg)],
                    }
                }
                _ => {
                    // The export's rule: an item is "Yes" above the score at rank n / 5 of all
                    // rows (padding and history included, at −∞).
                    let mut sorted = s.clone();
                    sorted.sort_by(|a, b| b.total_cmp(a));
                    let threshold = sorted[s.len() / 5];
                    let target = r.target.unwrap_or(0) as usize;
                    let yes = s.get(target).is_some_and(|&v| v > threshold);
                    let (y, n) = if yes { (1.0, 0.0) } else { (0.0, 1.0) };
                    Scored {
                        predictions: vec![if yes { "Yes" } else { "No" }.into()],
                        values: vec![("acc", metrics::binary_correct(&r.answer, y, n))],
                    }
                }
            })
            .collect(),
    )
}
