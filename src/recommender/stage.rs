//! The recommender pipeline stage and the loading API later stages use.

use std::path::Path;

use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::export::{
    ITEM_EMBEDDINGS, MODEL_CONFIG, MODEL_WEIGHTS, SIM_ITEM, SUMMARY, TEST_TOP, TRAIN_TOP,
    USER_EMBEDDINGS, export_rng, sim_items, top_lines, write_matrix, write_sim_items,
};
use super::metrics::{mean_metrics, metric, metric_values, rank_of};
use super::mf::{Mf, MfConfig};
use super::model::RecModel;
use super::samples::{Example, Examples, Query};
use super::sasrec::{SasRec, SasRecConfig};
use super::top_file::{TopLine, top1_concentration, write_top_file};
use super::train::{TrainOutcome, TrainReport, evaluate, for_each_score_row, train};
use super::{ModelKind, ResolvedRecommender};
use crate::data::Dataset;
use crate::error::{Error, IoContext, Result};
use crate::llm::BackendTask;
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings, check_cancel};
use crate::spec::RawSpec;
use crate::training::seeded_init;

/// The model architecture as saved next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum SavedConfig {
    Sasrec(SasRecConfig),
    Mf(MfConfig),
}

/// The recommender stage (spec §2): trains the target model and exports its views.
pub struct RecommenderStage;

/// The settings are the section with its seed and model defaults resolved.
impl StageSettings for ResolvedRecommender {
    fn fingerprint(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("settings serialise")
    }
}

impl Stage for RecommenderStage {
    fn kind(&self) -> StageKind {
        StageKind::Recommender
    }

    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Data]
    }

    fn settings(&self, spec: &RawSpec, _spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        Ok(Resolved::new(spec.recommender.resolve(run_seed)?))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let settings = ctx.settings::<ResolvedRecommender>()?;
        let data = Dataset::load(ctx.input(StageKind::Data))?;
        run_recommender(ctx, &settings, &data)
    }
}

/// Trains, evaluates and exports for `data` on the configured device.
pub fn run_recommender(
    ctx: &mut StageContext<'_>,
    settings: &ResolvedRecommender,
    data: &Dataset,
) -> Result<()> {
    struct Task<'a, 'b> {
        ctx: &'a mut StageContext<'b>,
        settings: &'a ResolvedRecommender,
        data: &'a Dataset,
    }
    impl BackendTask for Task<'_, '_> {
        type Output = ();
        fn run<B: Backend>(self, device: B::Device) -> Result<()> {
            run_on::<Autodiff<B>>(self.ctx, self.settings, self.data, &device)
        }
    }
    settings.device.run(Task {
        ctx,
        settings,
        data,
    })
}

fn run_on<B: AutodiffBackend>(
    ctx: &mut StageContext<'_>,
    settings: &ResolvedRecommender,
    data: &Dataset,
    device: &B::Device,
) -> Result<()> {
    let ex = Examples::new(data);
    if ex.train.is_empty() || ex.test.is_empty() {
        return Err(Error::Config(
            "the dataset has no training or test interactions".into(),
        ));
    }
    let key = checkpoint_key(settings, data);
    let ckpt = ctx.out_dir().join("checkpoints");
    let seed = settings.train.seed;
    match settings.model {
        ModelKind::Sasrec => {
            let cfg = SasRecConfig {
                n_items: ex.n_item_rows,
                ..settings.sasrec.clone().expect("resolved SASRec settings")
            };
            let model: SasRec<B> = seeded_init::<B, _>(device, seed, |d| cfg.init(d));
            let saved = SavedConfig::Sasrec(cfg);
            train_and_finish(ctx, model, saved, &ex, data, settings, &key, &ckpt, device)
        }
        ModelKind::Mf => {
            let cfg = MfConfig::new(ex.n_user_rows, ex.n_item_rows)
                .with_embedding_size(settings.embedding_size);
            let model: Mf<B> = seeded_init::<B, _>(device, seed, |d| cfg.init(d));
            let saved = SavedConfig::Mf(cfg);
            train_and_finish(ctx, model, saved, &ex, data, settings, &key, &ckpt, device)
        }
    }
}

/// Trains either model kind (resuming from `ckpt` when it holds this run's checkpoints),
/// then evaluates and exports it.
#[allow(clippy::too_many_arguments)]
fn train_and_finish<B, M>(
    ctx: &mut StageContext<'_>,
    model: M,
    saved: SavedConfig,
    ex: &Examples<'_>,
    data: &Dataset,
    settings: &ResolvedRecommender,
    key: &str,
    ckpt: &Path,
    device: &B::Device,
) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + RecModel<B>,
    M::InnerModule: RecModel<B::InnerBackend>,
{
    let report = TrainReport {
        recorder: &mut *ctx.recorder,
        progress: ctx.progress,
    };
    let (model, outcome) = train(model, ex, &settings.train, key, ckpt, device, report)?;
    finish(ctx, &model, saved, ex, data, settings, &outcome, device)
}

/// Identifies the training run a checkpoint belongs to: settings plus a digest of the data.
fn checkpoint_key(settings: &ResolvedRecommender, data: &Dataset) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(settings).expect("settings serialise"));
    for seq in &data.sequences {
        h.update((seq.len() as u64).to_le_bytes());
        for i in seq {
            h.update(i.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Evaluation, popularity baseline and exports of the trained model.
#[allow(clippy::too_many_arguments)]
fn finish<B: Backend, M: RecModel<B>>(
    ctx: &mut StageContext<'_>,
    model: &M,
    config: SavedConfig,
    ex: &Examples<'_>,
    data: &Dataset,
    settings: &ResolvedRecommender,
    outcome: &TrainOutcome,
    device: &B::Device,
) -> Result<()> {
    let out = ctx.out_dir().to_path_buf();
    let batch = settings.train.eval_batch_size;
    let ranks = evaluate(model, &ex.test, batch, device);
    record_metrics(ctx, "", &ex.test, &ranks);
    let pop_ranks = popularity_ranks(ex);
    record_metrics(ctx, "popularity.", &ex.test, &pop_ranks);
    ctx.recorder.scalar("best_epoch", outcome.best_epoch as f64);
    ctx.recorder.scalar("epochs", outcome.history.len() as f64);

    check_cancel()?;
    let (times, train_top) = match config {
        SavedConfig::Sasrec(_) => (1, true),
        SavedConfig::Mf(_) => (6, false),
    };
    let mut rng = export_rng(settings.export_seed);
    if train_top {
        let lines = top_file_lines(model, &ex.train, times, &mut rng, batch, device, ctx)?;
        record_concentration(ctx, "train", &lines, times);
        write_top_file(&out.join(TRAIN_TOP), &lines)?;
    }
    let lines = top_file_lines(model, &ex.test, times, &mut rng, batch, device, ctx)?;
    record_concentration(ctx, "test", &lines, times);
    write_top_file(&out.join(TEST_TOP), &lines)?;

    let (items, rows, dim) = to_rows(model.item_table());
    write_sim_items(&out.join(SIM_ITEM), &sim_items(&items, rows))?;
    write_matrix(
        &out.join(ITEM_EMBEDDINGS),
        "item_embedding",
        &items,
        rows,
        dim,
    )?;
    let users = user_table(model, data, batch, device);
    write_matrix(
        &out.join(USER_EMBEDDINGS),
        "user_embedding",
        &users,
        data.n_users + 1,
        dim,
    )?;
    let weights = out.join(MODEL_WEIGHTS);
    model
        .save_into(&mut SafetensorsStore::from_file(&weights).overwrite(true))
        .map_err(|e| Error::model_file(&weights, e.to_string()))?;
    let cfg_path = out.join(MODEL_CONFIG);
    std::fs::write(
        &cfg_path,
        serde_json::to_string_pretty(&config).expect("config serialises"),
    )
    .at(&cfg_path)?;

    let test = mean_metrics(&ranks);
    let pop = mean_metrics(&pop_ranks);
    let summary = serde_json::json!({
        "settings": settings,
        "best_epoch": outcome.best_epoch,
        "stopped_early": outcome.stopped_early,
        "test": test.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "popularity": pop.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "history": outcome.history,
    });
    let summary_path = out.join(SUMMARY);
    std::fs::write(
        &summary_path,
        serde_json::to_string_pretty(&summary).expect("json"),
    )
    .at(&summary_path)?;
    ctx.progress.println(format!(
        "{}: test ndcg@10 {:.4} hr@10 {:.4} | popularity ndcg@10 {:.4} hr@10 {:.4}",
        match config {
            SavedConfig::Sasrec(_) => "sasrec",
            SavedConfig::Mf(_) => "mf",
        },
        metric(&test, "ndcg@10"),
        metric(&test, "hr@10"),
        metric(&pop, "ndcg@10"),
        metric(&pop, "hr@10"),
    ));
    Ok(())
}

/// Records mean metrics as scalars (`prefix` + name) and per-user values as examples.
fn record_metrics(
    ctx: &mut StageContext<'_>,
    prefix: &str,
    examples: &[Example<'_>],
    ranks: &[usize],
) {
    for (name, value) in mean_metrics(ranks) {
        ctx.recorder.scalar(&format!("{prefix}{name}"), value);
    }
    for (e, &r) in examples.iter().zip(ranks) {
        let uid = e.query.uid.to_string();
        for (name, value) in metric_values(r) {
            ctx.recorder
                .example(&format!("{prefix}{name}"), &uid, value);
        }
    }
}

/// Ranks of the test targets under a popularity ranking: items by how often they occur in the
/// users' visible histories (everything before each user's test item).
pub fn popularity_ranks(ex: &Examples<'_>) -> Vec<usize> {
    let mut counts = vec![0f32; ex.n_item_rows];
    for e in &ex.test {
        for &i in e.query.history {
            counts[i as usize] += 1.0;
        }
    }
    ex.test
        .iter()
        .map(|e| rank_of(&counts, e.target, e.query.history))
        .collect()
}

/// `top1.<split>.distinct` and `top1.<split>.max_share` ([`top1_concentration`]), with a
/// warning when one item is the top-1 of more than 5 % of the user states.
fn record_concentration(ctx: &mut StageContext<'_>, split: &str, lines: &[TopLine], times: usize) {
    let (distinct, max_share) = top1_concentration(lines, times);
    ctx.recorder
        .scalar(&format!("top1.{split}.distinct"), distinct as f64);
    ctx.recorder
        .scalar(&format!("top1.{split}.max_share"), max_share);
    if max_share > 0.05 {
        tracing::warn!(
            "the target's top-1 is concentrated ({split}): one item is first for {:.1} % of user states ({distinct} distinct top-1 items); uid2next will reward a constant answer",
            100.0 * max_share
        );
    }
}

/// The top-file lines of every example, scored in batches.
fn top_file_lines<B: Backend, M: RecModel<B>>(
    model: &M,
    examples: &[Example<'_>],
    times: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
    batch: usize,
    device: &B::Device,
    ctx: &StageContext<'_>,
) -> Result<Vec<TopLine>> {
    let bar = ctx.progress.bar(examples.len() as u64, "top file");
    let queries: Vec<Query<'_>> = examples.iter().map(|e| e.query).collect();
    let mut lines = Vec::with_capacity(examples.len() * times);
    let mut failure = None;
    for_each_score_row(model, &queries, batch, device, |i, scores| {
        let e = &examples[i];
        match top_lines(e.query.uid, e.target, e.query.history, scores, times, rng) {
            Ok(l) => lines.extend(l),
            Err(reason) => failure = failure.take().or(Some(reason)),
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    match failure {
        Some(reason) => Err(Error::Config(format!(
            "cannot write the top file: {reason}"
        ))),
        None => Ok(lines),
    }
}

/// Each user's embedding from the full history (row 0 stays zero): `[n_users + 1, d]` row-major.
fn user_table<B: Backend, M: RecModel<B>>(
    model: &M,
    data: &Dataset,
    batch: usize,
    device: &B::Device,
) -> Vec<f32> {
    let queries: Vec<Query<'_>> = data
        .users()
        .map(|(uid, seq)| Query { uid, history: seq })
        .collect();
    let mut out: Vec<f32> = Vec::new();
    for chunk in queries.chunks(batch) {
        let (rows, _, dim) = to_rows(model.user_embeddings(chunk, device));
        if out.is_empty() {
            out.resize(dim, 0.0);
        }
        out.extend(rows);
    }
    out
}

fn to_rows<B: Backend>(t: Tensor<B, 2>) -> (Vec<f32>, usize, usize) {
    let [r, c] = t.dims();
    (
        t.into_data().convert::<f32>().to_vec().expect("f32 tensor"),
        r,
        c,
    )
}

/// A trained target model loaded from the stage's artifact folder, for inference (use an
/// inference backend, not an autodiff one, so SASRec's dropout is off).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per process; boxing would buy nothing
pub enum TrainedRecommender<B: Backend> {
    Sasrec(SasRec<B>),
    Mf(Mf<B>),
}

impl<B: Backend> TrainedRecommender<B> {
    /// Loads `model.json` + `model.safetensors` from a recommender artifact folder.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let cfg_path = dir.join(MODEL_CONFIG);
        let text = std::fs::read_to_string(&cfg_path).at(&cfg_path)?;
        let config: SavedConfig =
            serde_json::from_str(&text).map_err(|e| Error::model_file(&cfg_path, e.to_string()))?;
        let weights = dir.join(MODEL_WEIGHTS);
        let mut store = SafetensorsStore::from_file(&weights);
        let check = |r: std::result::Result<burn::store::ApplyResult, _>| -> Result<()> {
            let r = r.map_err(|e: burn::store::SafetensorsStoreError| {
                Error::model_file(&weights, e.to_string())
            })?;
            if !r.missing.is_empty() || !r.errors.is_empty() {
                return Err(Error::model_file(
                    &weights,
                    format!("missing {:?}, errors {:?}", r.missing, r.errors),
                ));
            }
            Ok(())
        };
        Ok(match config {
            SavedConfig::Sasrec(c) => {
                let mut m = c.init::<B>(device);
                check(m.load_from(&mut store))?;
                TrainedRecommender::Sasrec(m)
            }
            SavedConfig::Mf(c) => {
                let mut m = c.init::<B>(device);
                check(m.load_from(&mut store))?;
                TrainedRecommender::Mf(m)
            }
        })
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            TrainedRecommender::Sasrec(_) => ModelKind::Sasrec,
            TrainedRecommender::Mf(_) => ModelKind::Mf,
        }
    }

    /// User embeddings `[B, d]`: SASRec from each history (last `max_seq_len` items), MF from
    /// the user id.
    pub fn user_embeddings(&self, queries: &[Query<'_>], device: &B::Device) -> Tensor<B, 2> {
        match self {
            TrainedRecommender::Sasrec(m) => m.user_embeddings(queries, device),
            TrainedRecommender::Mf(m) => m.user_embeddings(queries, device),
        }
    }

    /// The item embedding table `[n_items + 1, d]` (row 0 = padding, zero).
    pub fn item_table(&self) -> Tensor<B, 2> {
        match self {
            TrainedRecommender::Sasrec(m) => RecModel::item_table(m),
            TrainedRecommender::Mf(m) => RecModel::item_table(m),
        }
    }
}

/// SASRec user embeddings from arbitrary histories (chronological item ids; the last
/// `max_seq_len` are used): `[histories.len(), d]`. Dropout is off unless `B` is an autodiff
/// backend (then it is on, as in the original LLM training, spec §9 quirk 4).
pub fn sasrec_user_embeddings<B: Backend>(
    model: &SasRec<B>,
    histories: &[&[u32]],
    device: &B::Device,
) -> Tensor<B, 2> {
    let queries: Vec<Query<'_>> = histories
        .iter()
        .map(|h| Query { uid: 0, history: h })
        .collect();
    model.user_embeddings(&queries, device)
}
