//! The alignment-data pipeline stage: reads the dataset and the recommender's exports, writes
//! the task records, the explanation prompts and a per-task count table.
//!
//! Outputs (in the stage's artifact folder):
//! - `train.jsonl`, `valid.jsonl`: [`AlignmentRecord`]s, task records grouped by task, ShareGPT
//!   conversations last (the trainer shuffles);
//! - `explain_{mode}_{train,valid}.jsonl` for every mode, and `explain_external_{split}.csv`
//!   (behaviour-form prompts for an external LLM);
//! - `summary_queries.csv` when `uid2summary` is enabled: the §1.8 queries to have an LLM write the
//!   user summaries;
//! - `templates.toml`: the template file used (so records can be re-rendered or exported);
//! - `stats.json`: counts, skipped tasks and ShareGPT reading statistics;
//! - `original/`: with `export_original`, the same data in RecAI's JSON schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::explain::{EXTERNAL_HEADER, explain_lines, explain_records, external_rows};
use super::record::{
    AlignmentRecord, ExplainRecord, explain_to_original, to_original, write_json_list,
};
use super::render::Renderer;
use super::sharegpt::{ShareGpt, how_to_get, load_sharegpt};
use super::tasks::{Generator, SimFile, Split, TaskData, TopFile, TopInputs, summary_queries};
use super::tokens::{TokenizerCounter, estimate_tokens};
use super::{AlignmentSection, Mode, Task, Templates};
use crate::data::Dataset;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{read_jsonl, write_csv, write_jsonl};
use crate::hash::hash_file;
use crate::openai::Endpoint;
use crate::pipeline::{
    Progress, Recorder, Resolved, Stage, StageContext, StageKind, StageSettings,
};
use crate::recommender::ModelKind;
use crate::recommender::{SIM_ITEM, TEST_TOP, TRAIN_TOP};
use crate::spec::{RawSpec, SeedSetting, resolve_spec_path};

/// The record format: 2 = task records carry `ranking`, the ids behind the ranking answer.
pub const RECORD_FORMAT: u32 = 2;

/// Names the estimate in the fingerprint when there is no pretrained backbone to count with.
pub const TOKEN_COUNTER: &str = "estimate_tokens/v1";

/// What counts tokens for the length limits, for the stage hash: the backbone (its files'
/// hashes) when the spec names a pretrained one, else the estimate.
fn token_counter_fingerprint(spec: &RawSpec, spec_dir: &Path) -> Result<Value> {
    if spec.llm.model.is_empty() {
        Ok(json!(TOKEN_COUNTER))
    } else {
        Ok(json!({ "backbone": crate::llm::backbone::fingerprint(&spec.llm, spec_dir)? }))
    }
}

/// The alignment-data stage.
pub struct AlignmentDataStage;

/// What the stage resolved at plan time: the build settings, the ShareGPT file's hash, the
/// backbone whose tokenizer counts tokens for the length limits (`None`: the estimate), and the
/// endpoint that writes the user summaries (`None`: no `uid2summary`).
pub struct AlignmentDataSettings {
    pub build: Settings,
    sharegpt_file: Value,
    token_counter: Value,
    backbone: Option<PathBuf>,
    summaries: Option<Endpoint>,
}

impl StageSettings for AlignmentDataSettings {
    fn fingerprint(&self) -> Value {
        let s = &self.build;
        let mut section = s.section.clone();
        section.seed = SeedSetting::Fixed(s.seed);
        json!({
            "section": section,
            "record_format": RECORD_FORMAT,
            "templates": { "version": s.templates.version, "sha256": s.templates.sha256 },
            "model": s.model,
            "explain": { "valid": s.explain_valid, "train": s.explain_train },
            "sharegpt_file": self.sharegpt_file,
            "token_counter": self.token_counter,
            "summaries": summary_endpoint(self.summaries.as_ref()),
        })
    }
}

/// The settings of one run of the stage, resolved from the spec.
#[derive(Debug, Clone)]
pub struct Settings {
    pub section: AlignmentSection,
    pub seed: u64,
    pub model: ModelKind,
    pub templates: Templates,
    /// Resolved ShareGPT path (`None` when the spec leaves it empty).
    pub sharegpt_path: Option<PathBuf>,
    pub explain_valid: usize,
    pub explain_train: usize,
    /// LLM-written user summaries by uid (the `uid2summary` answers), written by the `[judge]`
    /// endpoint when `alignment.summaries = "judge"`; `None` leaves the task out.
    pub summaries: Option<BTreeMap<u32, String>>,
}

impl Settings {
    pub fn from_spec(spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Settings> {
        let section = spec.alignment.clone();
        let resolve = |p: &str| resolve_spec_path(spec_dir, p);
        let templates = if section.templates.is_empty() {
            Templates::builtin()
        } else {
            Templates::load(&resolve(&section.templates))?
        };
        // Unset: the file `recx assets fetch sharegpt` put in the cache (or `RECX_SHAREGPT`).
        let sharegpt_path = if section.sharegpt_path.is_empty() {
            crate::llm::assets::SHAREGPT.find()
        } else {
            Some(resolve(&section.sharegpt_path))
        };
        Ok(Settings {
            seed: section.seed.resolve(run_seed),
            section,
            model: spec.recommender.model,
            templates,
            sharegpt_path,
            explain_valid: spec.explain.valid_records,
            explain_train: spec.explain.train_records,
            summaries: None,
        })
    }
}

impl Stage for AlignmentDataStage {
    fn kind(&self) -> StageKind {
        StageKind::AlignmentData
    }

    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Data, StageKind::Recommender]
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        let build = Settings::from_spec(spec, spec_dir, run_seed)?;
        let sharegpt_file = match (&build.sharegpt_path, build.section.wants_sharegpt()) {
            (_, false) => Value::Null,
            (Some(p), true) if p.is_file() => json!({ "sha256": hash_file(p)?.0 }),
            // Fail at plan time, before hours of upstream stages, not when this stage starts.
            (p, true) => {
                let cache = crate::llm::assets::SHAREGPT.dir();
                let shown = p.as_deref().unwrap_or(&cache);
                return Err(Error::Config(format!(
                    "alignment.sharegpt_path: {}",
                    how_to_get(shown)
                )));
            }
        };
        let backbone = crate::llm::backbone::backbone_path(&spec.llm, spec_dir)?;
        Ok(Resolved::new(AlignmentDataSettings {
            build,
            sharegpt_file,
            token_counter: token_counter_fingerprint(spec, spec_dir)?,
            backbone,
            summaries: spec
                .alignment
                .wants_summaries()
                .then(|| spec.judge.endpoint()),
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let resolved = ctx.settings::<AlignmentDataSettings>()?;
        let mut settings = resolved.build.clone();
        let ds = Dataset::load(ctx.input(StageKind::Data))?;
        if let Some(endpoint) = &resolved.summaries {
            settings.summaries = Some(write_user_summaries(ctx, &ds, &settings, endpoint)?);
        }
        let rec_dir = ctx.input(StageKind::Recommender).to_path_buf();
        let out_dir = ctx.out_dir().to_path_buf();
        let backbone = match &resolved.backbone {
            Some(path) => Some(crate::llm::cli::load_tokenizer(path, None)?),
            None => None,
        };
        let summary = match &backbone {
            Some(tokenizer) => {
                let counter = TokenizerCounter::new(tokenizer);
                let count = |text: &str| counter.count(text);
                let summary = build(&ds, &rec_dir, &out_dir, &settings, &count, ctx.progress)?;
                counter.finish()?;
                summary
            }
            None => build(
                &ds,
                &rec_dir,
                &out_dir,
                &settings,
                &estimate_tokens,
                ctx.progress,
            )?,
        };
        summary.record(ctx.recorder);
        let table = summary.table();
        tracing::info!("{table}");
        ctx.progress.println(table);
        Ok(())
    }
}

/// The system message the original sends with each summary query (`gpt_api.py`).
pub const SUMMARY_SYSTEM: &str = "You are a helpful assistant. \n";

/// What determines the LLM-written summaries: the endpoint and the system message (the query
/// template is hashed with the templates). Null when no LLM writes them.
fn summary_endpoint(endpoint: Option<&Endpoint>) -> Value {
    let Some(j) = endpoint else {
        return Value::Null;
    };
    json!({
        "model": j.model,
        "base_url": j.base_url,
        "temperature": j.temperature,
        "max_tokens": j.max_tokens,
        "system": SUMMARY_SYSTEM,
    })
}

/// Has the `[judge]` endpoint write one summary per user from the §1.8 queries (cached in the
/// store like the judge's answers); returns them by uid.
fn write_user_summaries(
    ctx: &StageContext<'_>,
    ds: &Dataset,
    s: &Settings,
    endpoint: &Endpoint,
) -> Result<BTreeMap<u32, String>> {
    let queries = summary_queries(
        ds,
        &s.templates,
        &s.section.separator,
        s.section.max_hist_len,
    );
    let prompts: Vec<String> = queries.iter().map(|(_, q)| q.clone()).collect();
    let bar = ctx.progress.bar(prompts.len() as u64, "user summaries");
    let answers =
        crate::openai::ask_all(endpoint, Some(SUMMARY_SYSTEM), &prompts, ctx.cache, &|| {
            bar.inc(1)
        })?;
    bar.finish_and_clear();
    Ok(queries
        .into_iter()
        .zip(answers)
        .map(|((uid, _), a)| (uid, a.trim().to_string()))
        .collect())
}

/// Reads the recommender's exports for `model` from `rec_dir`.
pub fn read_top_inputs(rec_dir: &Path, model: ModelKind) -> Result<TopInputs> {
    let test = TopFile::read(&rec_dir.join(TEST_TOP))?;
    Ok(match model {
        ModelKind::Sasrec => TopInputs::Sasrec {
            train: TopFile::read(&rec_dir.join(TRAIN_TOP))?,
            test,
        },
        ModelKind::Mf => TopInputs::Mf { test },
    })
}

/// ShareGPT reading statistics for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShareGptStats {
    pub elements_read: usize,
    pub truncated_file: bool,
    pub passed_filter: usize,
    pub train: usize,
    pub valid: usize,
}

/// What the stage produced.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: Mode,
    pub model: ModelKind,
    /// Records per type (`uid2next`, ..., `sharegpt`): [train, valid].
    pub counts: BTreeMap<String, [usize; 2]>,
    /// Tasks left out, with the reason.
    pub skipped: BTreeMap<String, String>,
    pub sharegpt: Option<ShareGptStats>,
    /// Explanation records per split (the same in every mode).
    pub explain: BTreeMap<String, usize>,
    pub templates_version: u32,
    pub templates_sha256: String,
    pub seed: u64,
}

impl Summary {
    /// Records the counts as `count.<type>.<split>` scalars (plus totals, explanation counts and
    /// `skipped.<task>` = 1 for tasks left out).
    pub fn record(&self, rec: &mut dyn Recorder) {
        let mut totals = [0usize; 2];
        for (name, c) in &self.counts {
            for (k, split) in Split::ALL.iter().enumerate() {
                rec.scalar(&format!("count.{name}.{}", split.as_str()), c[k] as f64);
                totals[k] += c[k];
            }
        }
        for (k, split) in Split::ALL.iter().enumerate() {
            rec.scalar(&format!("count.total.{}", split.as_str()), totals[k] as f64);
        }
        for (split, n) in &self.explain {
            rec.scalar(&format!("count.explain.{split}"), *n as f64);
        }
        for task in self.skipped.keys() {
            rec.scalar(&format!("skipped.{task}"), 1.0);
        }
    }

    fn get(&self, name: &str) -> [usize; 2] {
        self.counts.get(name).copied().unwrap_or([0, 0])
    }

    /// The per-task counts shaped like the paper's Table B2, then the task-4 breakdown.
    pub fn table(&self) -> String {
        let item_tasks: Vec<&str> = Task::ALL
            .iter()
            .filter(|t| t.paper_task() == 4)
            .map(|t| t.as_str())
            .collect();
        let sum = |names: &[&str]| {
            names.iter().fold([0, 0], |acc, n| {
                let c = self.get(n);
                [acc[0] + c[0], acc[1] + c[1]]
            })
        };
        let rows: Vec<(String, [usize; 2])> = vec![
            ("1 next item (uid2next)".into(), self.get("uid2next")),
            ("2 ranking (uidiid2rank)".into(), self.get("uidiid2rank")),
            (
                "3 interest cls (uidiid2binary)".into(),
                self.get("uidiid2binary"),
            ),
            ("4 item discrimination".into(), sum(&item_tasks)),
            ("5 ShareGPT".into(), self.get("sharegpt")),
            ("6 history (uid2hist)".into(), self.get("uid2hist")),
        ];
        let total = rows
            .iter()
            .fold([0, 0], |a, (_, c)| [a[0] + c[0], a[1] + c[1]]);
        let mut s = format!(
            "alignment data ({} mode, {} target, seed {}): records per task\n",
            self.mode, self.model, self.seed
        );
        s.push_str(&format!("{:<34} {:>9} {:>9}\n", "Task", "Train", "Valid"));
        for (name, c) in rows.iter().chain([(String::from("Total"), total)].iter()) {
            s.push_str(&format!(
                "{name:<34} {:>9} {:>9}\n",
                thousands(c[0]),
                thousands(c[1])
            ));
        }
        let summary = self.get("uid2summary");
        if summary != [0, 0] {
            s.push_str(&format!(
                "{:<34} {:>9} {:>9}   (not in the total, as in the paper)\n",
                "6 user summary (uid2summary)",
                thousands(summary[0]),
                thousands(summary[1])
            ));
        }
        s.push_str("task 4 by type:");
        for name in &item_tasks {
            let c = self.get(name);
            if c != [0, 0] {
                s.push_str(&format!(" {name} {}/{}", thousands(c[0]), thousands(c[1])));
            }
        }
        s.push('\n');
        for (task, why) in &self.skipped {
            s.push_str(&format!("skipped {task}: {why}\n"));
        }
        s
    }
}

/// 23870 -> "23,870".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Generates everything into `out_dir`. The stage's `run` without the spec plumbing, usable from
/// tests and tools with a dataset built in memory.
pub fn build(
    ds: &Dataset,
    rec_dir: &Path,
    out_dir: &Path,
    settings: &Settings,
    count_tokens: &dyn Fn(&str) -> usize,
    progress: &Progress,
) -> Result<Summary> {
    let section = &settings.section;
    std::fs::create_dir_all(out_dir).at(out_dir)?;
    let tops = read_top_inputs(rec_dir, settings.model)?;
    let tasks = section.active_tasks();
    let sim = if tasks.contains(&Task::Iid2Sim) {
        Some(SimFile::read(&rec_dir.join(SIM_ITEM))?)
    } else {
        None
    };

    let spinner = progress.spinner("alignment tasks");
    let mut generator = Generator::new(
        ds,
        &settings.templates,
        section,
        settings.seed,
        count_tokens,
    );
    generator.summaries = settings.summaries.as_ref();
    let data = generator.generate(sim.as_ref(), &tops)?;
    crate::pipeline::check_cancel()?;
    for (task, why) in &data.skipped {
        tracing::warn!("alignment task {task} left out: {why}");
    }

    spinner.set_message("ShareGPT");
    let sharegpt = if section.wants_sharegpt() {
        let path = settings.sharegpt_path.as_deref().ok_or_else(|| {
            Error::Config(format!(
                "alignment.sharegpt_path is not set: {}",
                how_to_get(Path::new("(unset)"))
            ))
        })?;
        Some(load_sharegpt(
            path,
            section.sharegpt_train,
            section.sharegpt_valid,
            section.sharegpt_max_prompt_tokens,
            count_tokens,
            settings.seed,
        )?)
    } else {
        None
    };
    crate::pipeline::check_cancel()?;

    spinner.set_message("writing");
    let splits = assemble(&data, sharegpt.as_ref());
    for (split, records) in Split::ALL.iter().zip(&splits) {
        write_jsonl(&out_dir.join(format!("{}.jsonl", split.as_str())), records)?;
    }
    let explain = write_explanations(ds, &tops, out_dir, settings)?;
    if tasks.contains(&Task::Uid2Summary) {
        write_summary_queries(ds, out_dir, settings)?;
    }
    let templates_copy = out_dir.join("templates.toml");
    let text = if section.templates.is_empty() {
        super::templates::BUILTIN_TEMPLATES.to_string()
    } else {
        std::fs::read_to_string(&settings.templates.source).at(&settings.templates.source)?
    };
    std::fs::write(&templates_copy, text).at(&templates_copy)?;

    let summary = summarize(&data, &splits, sharegpt.as_ref(), explain, settings);
    let stats = out_dir.join("stats.json");
    let stats_text = serde_json::to_string_pretty(&summary).expect("summary serializes");
    std::fs::write(&stats, stats_text).at(&stats)?;
    if section.export_original {
        export_original(
            out_dir,
            &out_dir.join("original"),
            section.mode,
            &settings.templates,
        )?;
    }
    spinner.finish_and_clear();
    Ok(summary)
}

/// Task records (grouped by task) then ShareGPT, per split.
fn assemble(data: &TaskData, sharegpt: Option<&ShareGpt>) -> [Vec<AlignmentRecord>; 2] {
    Split::ALL.map(|split| {
        let mut v: Vec<AlignmentRecord> = data
            .records(split)
            .cloned()
            .map(AlignmentRecord::Task)
            .collect();
        if let Some(sg) = sharegpt {
            let chats = if split == Split::Train {
                &sg.train
            } else {
                &sg.valid
            };
            v.extend(chats.iter().cloned().map(AlignmentRecord::Chat));
        }
        v
    })
}

fn summarize(
    data: &TaskData,
    splits: &[Vec<AlignmentRecord>; 2],
    sharegpt: Option<&ShareGpt>,
    explain: BTreeMap<String, usize>,
    settings: &Settings,
) -> Summary {
    let mut counts: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for (k, records) in splits.iter().enumerate() {
        for r in records {
            counts.entry(r.type_name().to_string()).or_default()[k] += 1;
        }
    }
    Summary {
        mode: settings.section.mode,
        model: settings.model,
        counts,
        skipped: data
            .skipped
            .iter()
            .map(|(t, why)| (t.to_string(), why.clone()))
            .collect(),
        sharegpt: sharegpt.map(|sg| ShareGptStats {
            elements_read: sg.read.elements,
            truncated_file: sg.read.truncated,
            passed_filter: sg.kept,
            train: sg.train.len(),
            valid: sg.valid.len(),
        }),
        explain,
        templates_version: settings.templates.version,
        templates_sha256: settings.templates.sha256.clone(),
        seed: settings.seed,
    }
}

/// Writes the explanation prompts in every mode plus the external-LLM CSV; returns the record
/// count per split.
fn write_explanations(
    ds: &Dataset,
    tops: &TopInputs,
    out_dir: &Path,
    s: &Settings,
) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (split, max) in [
        (Split::Valid, s.explain_valid),
        (Split::Train, s.explain_train),
    ] {
        let lines = explain_lines(ds, tops, split);
        for mode in Mode::ALL {
            let renderer = Renderer::new(ds, *mode, &s.section.separator);
            let records =
                explain_records(&renderer, &s.templates, s.section.max_hist_len, &lines, max)?;
            let name = format!("explain_{mode}_{}.jsonl", split.as_str());
            write_jsonl(&out_dir.join(name), &records)?;
            if *mode == Mode::Behaviour {
                let csv = out_dir.join(format!("explain_external_{}.csv", split.as_str()));
                write_csv(&csv, &EXTERNAL_HEADER, external_rows(&records))?;
            }
            counts.insert(split.as_str().to_string(), records.len());
        }
    }
    Ok(counts)
}

/// The §1.8 queries (one per user, in uid order) for an external LLM to write user summaries.
fn write_summary_queries(ds: &Dataset, out_dir: &Path, s: &Settings) -> Result<()> {
    let queries = summary_queries(
        ds,
        &s.templates,
        &s.section.separator,
        s.section.max_hist_len,
    );
    let rows = queries.into_iter().map(|(uid, q)| vec![uid.to_string(), q]);
    write_csv(
        &out_dir.join("summary_queries.csv"),
        &["id", "question"],
        rows,
    )
}

/// Writes a finished stage folder's records in RecAI's JSON schema (`{mode}_{split}.json` and
/// `explan_{mode}_{split}.json`) into `dest`.
pub fn export_original(
    stage_dir: &Path,
    dest: &Path,
    mode: Mode,
    templates: &Templates,
) -> Result<()> {
    std::fs::create_dir_all(dest).at(dest)?;
    for split in Split::ALL {
        let records: Vec<AlignmentRecord> =
            read_jsonl(&stage_dir.join(format!("{}.jsonl", split.as_str())))?;
        let path = dest.join(format!("{mode}_{}.json", split.as_str()));
        write_json_list(&path, records.iter().map(|r| to_original(r, templates)))?;
        for m in Mode::ALL {
            let src = stage_dir.join(format!("explain_{m}_{}.jsonl", split.as_str()));
            let records: Vec<ExplainRecord> = read_jsonl(&src)?;
            let path = dest.join(format!("explan_{m}_{}.json", split.as_str()));
            write_json_list(
                &path,
                records.iter().map(|r| explain_to_original(r, templates)),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(23870), "23,870");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
