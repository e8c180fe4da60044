//! The task generators: which input feeds which task and split, and each record's content.
//!
//! The rules are the spec's §3.3 (SASRec) and §3.4 (MF). In short:
//! - item tasks (paper task 4) make one record per item that has the field, all in train; the
//!   item-recovery set (`iid2title` with its own wording) is the only item task in valid;
//! - `uid2hist` (task 6) has one train record per history prefix and one valid record per user
//!   with the full history (SASRec), or 3 train / 1 valid record per user with the history before
//!   the last item (MF, valid users = the last 10 % of user ids);
//! - the top-file tasks (tasks 1–3) take their labels from the target recommender:
//!   one record per `train_top.txt` line (train) and `test_top.txt` line (valid) for SASRec;
//!   MF has only `test_top.txt`, 6 lines per user, split by line index.
//!
//! Randomness: every task draws from its own stream of the stage seed ([`crate::seed`]), so a
//! task's records do not depend on which other tasks are enabled, and the same seed gives the
//! same template and candidate-order draws in every mode (the B/I/H variants differ only in
//! rendering).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::record::TaskRecord;
use super::render::{Renderer, check_item, check_user, history_before, last_n};
use super::templates::{ITEM_RECOVERY_SET, fill};
use super::{AlignmentSection, Mode, Task, Templates};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::recommender::export::read_sim_items;
use crate::recommender::top_file::{TopLine, read_top_file};

/// SASRec valid lines kept for `uidiid2binary` (the original's `random.random() < 0.3`).
pub const SASREC_BINARY_VALID_PROB: f64 = 0.3;
/// MF lines with index % 6 == 3 kept for `uidiid2binary` valid.
pub const MF_BINARY_VALID_PROB: f64 = 0.5;
/// MF: users with `uid > MF_VALID_USER_FRACTION * n_users` are valid users.
pub const MF_VALID_USER_FRACTION: f64 = 0.9;
/// MF: top-file lines per user.
pub const MF_LINES_PER_USER: usize = 6;
/// `iid2description` prefers the first description entry longer than this many characters.
pub const DESCRIPTION_MIN_CHARS: usize = 50;
/// Why `uid2summary` is left out when no summaries were given (`alignment.summaries = "off"`).
pub const SUMMARY_SKIP_REASON: &str = "needs LLM-written user summaries (spec §1.8); set \
     `alignment.summaries = \"judge\"` to have the [judge] endpoint write them";

/// Train or valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Valid,
}

impl Split {
    pub const ALL: [Split; 2] = [Split::Train, Split::Valid];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
        }
    }
}

/// A top file with the path it came from (for messages).
#[derive(Debug, Clone)]
pub struct TopFile {
    pub path: PathBuf,
    pub lines: Vec<TopLine>,
}

impl TopFile {
    pub fn read(path: &Path) -> Result<TopFile> {
        Ok(TopFile {
            path: path.to_path_buf(),
            lines: read_top_file(path)?,
        })
    }
}

/// The recommender's top files, by model family.
#[derive(Debug, Clone)]
pub enum TopInputs {
    /// `train_top.txt` (one line per training interaction) and `test_top.txt` (one per user).
    Sasrec { train: TopFile, test: TopFile },
    /// `test_top.txt` only, 6 lines per user.
    Mf { test: TopFile },
}

/// `sim_item.txt`: each item's nearest neighbour (spec §1.7).
#[derive(Debug, Clone)]
pub struct SimFile {
    pub path: PathBuf,
    pub pairs: Vec<(u32, u32)>,
}

impl SimFile {
    /// Reads the file the recommender wrote; a malformed line fails with file:line.
    pub fn read(path: &Path) -> Result<SimFile> {
        Ok(SimFile {
            path: path.to_path_buf(),
            pairs: read_sim_items(path)?,
        })
    }
}

/// Generated task records, grouped by task and split.
#[derive(Debug, Default, Clone)]
pub struct TaskData {
    groups: BTreeMap<(Task, Split), Vec<TaskRecord>>,
    /// Enabled tasks that were left out, with the reason.
    pub skipped: Vec<(Task, String)>,
}

impl TaskData {
    fn push(&mut self, split: Split, record: TaskRecord) {
        self.groups
            .entry((record.task, split))
            .or_default()
            .push(record);
    }

    /// A split's records, grouped by task in task order (items, users, then top-file tasks).
    pub fn records(&self, split: Split) -> impl Iterator<Item = &TaskRecord> {
        self.groups
            .iter()
            .filter(move |((_, s), _)| *s == split)
            .flat_map(|(_, v)| v.iter())
    }

    /// The records of one task and split.
    pub fn of(&self, task: Task, split: Split) -> &[TaskRecord] {
        self.groups.get(&(task, split)).map_or(&[], Vec::as_slice)
    }

    pub fn count(&self, task: Task, split: Split) -> usize {
        self.of(task, split).len()
    }
}

/// The slots and labels of one record before its template is drawn.
struct Draft {
    task: Task,
    set: &'static str,
    slots: Vec<String>,
    answer: String,
    uid: Option<u32>,
    iid: i64,
    target: Option<u32>,
    candidates: Vec<u32>,
    history: Vec<u32>,
    item_tokens: Vec<u32>,
}

impl Draft {
    fn item(task: Task, iid: u32, slot: String, answer: String, item_tokens: Vec<u32>) -> Draft {
        Draft {
            task,
            set: task.as_str(),
            slots: vec![slot],
            answer,
            uid: None,
            iid: i64::from(iid),
            target: None,
            candidates: Vec::new(),
            history: Vec::new(),
            item_tokens,
        }
    }

    fn user(
        task: Task,
        uid: u32,
        iid: i64,
        history: &[u32],
        slots: Vec<String>,
        answer: String,
    ) -> Draft {
        Draft {
            task,
            set: task.as_str(),
            slots,
            answer,
            uid: Some(uid),
            iid,
            target: None,
            candidates: Vec::new(),
            history: history.to_vec(),
            item_tokens: Vec::new(),
        }
    }
}

/// Everything the generators need; build one with [`Generator::new`].
pub struct Generator<'a> {
    pub ds: &'a Dataset,
    pub templates: &'a Templates,
    pub mode: Mode,
    /// Enabled tasks (already restricted to the mode).
    pub tasks: Vec<Task>,
    pub seed: u64,
    pub separator: &'a str,
    pub max_hist_len: usize,
    pub text_max_tokens: usize,
    /// Token counter for the `feature2iid` / `description2iid` length limit.
    pub count_tokens: &'a dyn Fn(&str) -> usize,
    /// LLM-written user summaries by uid, the `uid2summary` answers (spec §1.8); `None` leaves
    /// the task out. The queries to produce them come from [`summary_queries`].
    pub summaries: Option<&'a BTreeMap<u32, String>>,
}

impl<'a> Generator<'a> {
    /// A generator for `section`'s mode, tasks and text settings, with the resolved `seed`.
    pub fn new(
        ds: &'a Dataset,
        templates: &'a Templates,
        section: &'a AlignmentSection,
        seed: u64,
        count_tokens: &'a dyn Fn(&str) -> usize,
    ) -> Self {
        Generator {
            ds,
            templates,
            mode: section.mode,
            tasks: section.active_tasks(),
            seed,
            separator: &section.separator,
            max_hist_len: section.max_hist_len,
            text_max_tokens: section.text_max_tokens,
            count_tokens,
            summaries: None,
        }
    }

    pub fn renderer(&self) -> Renderer<'a> {
        Renderer::new(self.ds, self.mode, self.separator)
    }

    fn enabled(&self, task: Task) -> bool {
        self.tasks.contains(&task) && task.in_mode(self.mode)
    }

    /// The task's own random stream.
    fn rng(&self, task: Task) -> ChaCha8Rng {
        crate::seed::rng(self.seed, &format!("alignment.{}", task.as_str()), &[])
    }

    /// Draws the template and renders the question.
    fn finish(&self, d: Draft, rng: &mut ChaCha8Rng) -> TaskRecord {
        let (template, text) = self.templates.choose(d.set, rng);
        TaskRecord {
            task: d.task,
            question: fill(text, &d.slots),
            answer: d.answer,
            slots: d.slots,
            uid: d.uid,
            iid: d.iid,
            target: d.target,
            candidates: d.candidates,
            ranking: Vec::new(),
            history: d.history,
            item_tokens: d.item_tokens,
            template_set: d.set.to_string(),
            template,
        }
    }

    /// All enabled tasks from the dataset, `sim_item.txt` and the top files.
    pub fn generate(&self, sim: Option<&SimFile>, tops: &TopInputs) -> Result<TaskData> {
        let mut out = TaskData::default();
        self.item_tasks(&mut out, sim)?;
        let mf = matches!(tops, TopInputs::Mf { .. });
        self.user_tasks(&mut out, mf)?;
        match tops {
            TopInputs::Sasrec { train, test } => self.top_tasks_sasrec(&mut out, train, test)?,
            TopInputs::Mf { test } => self.top_tasks_mf(&mut out, test)?,
        }
        Ok(out)
    }

    /// Task 4 from the catalogue and `sim_item.txt`.
    pub fn item_tasks(&self, out: &mut TaskData, sim: Option<&SimFile>) -> Result<()> {
        let r = self.renderer();
        let mut rngs: BTreeMap<Task, ChaCha8Rng> =
            Task::ALL.iter().map(|&t| (t, self.rng(t))).collect();
        let mut emit = |out: &mut TaskData, split: Split, d: Draft| {
            if self.enabled(d.task) {
                let rng = rngs.get_mut(&d.task).expect("every task has a stream");
                out.push(split, self.finish(d, rng));
            }
        };
        for iid in 1..=self.ds.n_items as u32 {
            let meta = &self.ds.items[iid as usize];
            let title = meta.title.clone();
            let token = r.item_token_only();
            let mut recovery = Draft::item(
                Task::Iid2Title,
                iid,
                token.clone(),
                title.clone(),
                vec![iid],
            );
            recovery.set = ITEM_RECOVERY_SET;
            emit(out, Split::Valid, recovery);
            emit(
                out,
                Split::Train,
                Draft::item(Task::Iid2Title, iid, token, title.clone(), vec![iid]),
            );

            let features = meta.features.join(self.separator);
            if !features.is_empty() {
                let tokens = r.item_tokens(&[iid]);
                emit(
                    out,
                    Split::Train,
                    Draft::item(
                        Task::Iid2Feature,
                        iid,
                        r.item(iid),
                        features.clone(),
                        tokens,
                    ),
                );
                let question = self.cut_text(&features);
                emit(
                    out,
                    Split::Train,
                    Draft::item(Task::Feature2Iid, iid, question, title.clone(), vec![]),
                );
            }
            if let Some(desc) = pick_description(&meta.description) {
                let tokens = r.item_tokens(&[iid]);
                emit(
                    out,
                    Split::Train,
                    Draft::item(
                        Task::Iid2Description,
                        iid,
                        r.item(iid),
                        desc.to_string(),
                        tokens,
                    ),
                );
                let question = self.cut_text(desc);
                emit(
                    out,
                    Split::Train,
                    Draft::item(Task::Description2Iid, iid, question, title.clone(), vec![]),
                );
            }
            if let Some(brand) = meta.brand.as_deref().filter(|b| !b.is_empty()) {
                let answer = brand.replace("\n    \n    ", " ");
                let tokens = r.item_tokens(&[iid]);
                emit(
                    out,
                    Split::Train,
                    Draft::item(Task::Iid2Brand, iid, r.item(iid), answer, tokens),
                );
            }
        }
        if self.enabled(Task::Iid2Sim) {
            let sim = sim.ok_or_else(|| {
                Error::Config("iid2sim is enabled but no sim_item.txt was given".into())
            })?;
            for (n, &(i, j)) in sim.pairs.iter().enumerate() {
                check_item(self.ds, i, &sim.path, n + 1)?;
                check_item(self.ds, j, &sim.path, n + 1)?;
                let d = Draft::item(
                    Task::Iid2Sim,
                    i,
                    r.item(i),
                    r.title(j).to_string(),
                    r.item_tokens(&[i]),
                );
                emit(out, Split::Train, d);
            }
        }
        Ok(())
    }

    /// The text→item questions are cut to `text_max_tokens`.
    fn cut_text(&self, text: &str) -> String {
        super::tokens::truncate_to_tokens(text, self.text_max_tokens, self.count_tokens).to_string()
    }

    /// Task 6 from the sequences: `uid2hist`; `uid2summary` is recorded as skipped.
    pub fn user_tasks(&self, out: &mut TaskData, mf: bool) -> Result<()> {
        self.summary_tasks(out, mf)?;
        self.history_tasks(out, mf);
        Ok(())
    }

    /// `uid2summary` (spec §3.3 / §3.4): one train record per user (MF: per train user) asking
    /// for the summary of the history before the last item; the answer is the LLM-written
    /// summary from [`Generator::summaries`]. Without summaries the task is recorded as skipped.
    fn summary_tasks(&self, out: &mut TaskData, mf: bool) -> Result<()> {
        if !self.enabled(Task::Uid2Summary) {
            return Ok(());
        }
        let Some(summaries) = self.summaries else {
            out.skipped
                .push((Task::Uid2Summary, SUMMARY_SKIP_REASON.to_string()));
            return Ok(());
        };
        let r = self.renderer();
        let mut rng = self.rng(Task::Uid2Summary);
        for (uid, seq) in self.ds.users() {
            let Some(&last) = seq.last() else { continue };
            if mf && is_mf_valid_user(uid, self.ds.n_users) {
                continue;
            }
            let summary = summaries.get(&uid).ok_or_else(|| {
                Error::Config(format!("uid2summary: no summary was given for user {uid}"))
            })?;
            let history = last_n(&seq[..seq.len() - 1], self.max_hist_len);
            let d = Draft::user(
                Task::Uid2Summary,
                uid,
                i64::from(last),
                history,
                vec![r.user(history)],
                summary.clone(),
            );
            out.push(Split::Train, self.finish(d, &mut rng));
        }
        Ok(())
    }

    /// `uid2hist`: every history prefix (SASRec) or the history before the last item (MF).
    fn history_tasks(&self, out: &mut TaskData, mf: bool) {
        if !self.enabled(Task::Uid2Hist) {
            return;
        }
        let r = self.renderer();
        let mut rng = self.rng(Task::Uid2Hist);
        let hist_record = |uid: u32, iid: i64, history: &[u32]| {
            Draft::user(
                Task::Uid2Hist,
                uid,
                iid,
                history,
                vec![r.user_token_only()],
                r.titles(history),
            )
        };
        for (uid, seq) in self.ds.users() {
            let Some(&last) = seq.last() else { continue };
            if mf {
                let history = last_n(&seq[..seq.len() - 1], self.max_hist_len);
                if is_mf_valid_user(uid, self.ds.n_users) {
                    out.push(
                        Split::Valid,
                        self.finish(hist_record(uid, i64::from(last), history), &mut rng),
                    );
                } else {
                    for _ in 0..3 {
                        out.push(
                            Split::Train,
                            self.finish(hist_record(uid, i64::from(last), history), &mut rng),
                        );
                    }
                }
            } else {
                let full = last_n(seq, self.max_hist_len);
                out.push(
                    Split::Valid,
                    self.finish(hist_record(uid, -1, full), &mut rng),
                );
                for p in 1..seq.len() {
                    let history = last_n(&seq[..p], self.max_hist_len);
                    out.push(
                        Split::Train,
                        self.finish(hist_record(uid, i64::from(seq[p]), history), &mut rng),
                    );
                }
            }
        }
    }

    /// Tasks 1–3 for SASRec: `train_top.txt` → train, `test_top.txt` → valid.
    pub fn top_tasks_sasrec(
        &self,
        out: &mut TaskData,
        train: &TopFile,
        test: &TopFile,
    ) -> Result<()> {
        let mut rngs = self.top_rngs();
        for (split, file) in [(Split::Train, train), (Split::Valid, test)] {
            for (n, line) in file.lines.iter().enumerate() {
                let ctx = self.top_context(file, n, line)?;
                if self.enabled(Task::Uid2Next) {
                    out.push(split, self.next_record(&ctx, &mut rngs.next));
                }
                if self.enabled(Task::UidIid2Rank) {
                    out.push(split, self.rank_record(&ctx, &mut rngs.rank));
                }
                if self.enabled(Task::UidIid2Binary) {
                    let keep = match split {
                        Split::Train => {
                            ctx.seq.len() >= 2 && line.iid == ctx.seq[ctx.seq.len() - 2]
                        }
                        Split::Valid => rngs.binary.random::<f64>() < SASREC_BINARY_VALID_PROB,
                    };
                    if keep {
                        for rec in self.binary_records(&ctx, &mut rngs.binary) {
                            out.push(split, rec);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Tasks 1–3 for MF: one `test_top.txt` with 6 lines per user, split by line index r = idx % 6
    /// (spec §3.4): next item r < 5 (valid users → valid), ranking r < 5 → train and r = 5 →
    /// valid, binary r < 3 → train and r = 3 → valid with probability 0.5.
    pub fn top_tasks_mf(&self, out: &mut TaskData, test: &TopFile) -> Result<()> {
        check_mf_groups(test)?;
        let mut rngs = self.top_rngs();
        for (n, line) in test.lines.iter().enumerate() {
            let ctx = self.top_context(test, n, line)?;
            let r = n % MF_LINES_PER_USER;
            if self.enabled(Task::Uid2Next) && r < 5 {
                let split = if is_mf_valid_user(line.uid, self.ds.n_users) {
                    Split::Valid
                } else {
                    Split::Train
                };
                out.push(split, self.next_record(&ctx, &mut rngs.next));
            }
            if self.enabled(Task::UidIid2Rank) {
                let split = if r < 5 { Split::Train } else { Split::Valid };
                out.push(split, self.rank_record(&ctx, &mut rngs.rank));
            }
            if self.enabled(Task::UidIid2Binary) {
                let split = match r {
                    0..3 => Some(Split::Train),
                    3 if rngs.binary.random::<f64>() < MF_BINARY_VALID_PROB => Some(Split::Valid),
                    _ => None,
                };
                if let Some(split) = split {
                    for rec in self.binary_records(&ctx, &mut rngs.binary) {
                        out.push(split, rec);
                    }
                }
            }
        }
        Ok(())
    }

    fn top_rngs(&self) -> TopRngs {
        TopRngs {
            next: self.rng(Task::Uid2Next),
            rank: self.rng(Task::UidIid2Rank),
            binary: self.rng(Task::UidIid2Binary),
        }
    }

    /// Checks a top-file line's ids and cuts the user's history before `iid`.
    fn top_context<'l>(
        &self,
        file: &TopFile,
        n: usize,
        line: &'l TopLine,
    ) -> Result<TopContext<'a, 'l>> {
        let at = n + 1;
        check_user(self.ds, line.uid, &file.path, at)?;
        for iid in [line.iid, line.top, line.pos, line.neg]
            .iter()
            .chain(&line.candidates)
        {
            check_item(self.ds, *iid, &file.path, at)?;
        }
        let seq = self.ds.sequences[line.uid as usize].as_slice();
        let history = history_before(seq, line.iid, self.max_hist_len).ok_or_else(|| {
            Error::bad_input(
                &file.path,
                at,
                format!("item {} is not in user {}'s sequence", line.iid, line.uid),
            )
        })?;
        Ok(TopContext {
            line,
            seq,
            history,
            user: self.renderer().user(history),
        })
    }

    /// `uid2next`: the recommender's item for this line (top-1 for SASRec, (r+1)-th for MF).
    fn next_record(&self, c: &TopContext, rng: &mut ChaCha8Rng) -> TaskRecord {
        let r = self.renderer();
        let d = Draft::user(
            Task::Uid2Next,
            c.line.uid,
            i64::from(c.line.iid),
            c.history,
            vec![c.user.clone()],
            r.title(c.line.top).to_string(),
        );
        self.finish(d, rng)
    }

    /// `uidiid2rank`: answer in the recommender's order, candidates shown shuffled.
    fn rank_record(&self, c: &TopContext, rng: &mut ChaCha8Rng) -> TaskRecord {
        let r = self.renderer();
        let answer = r.titles(&c.line.candidates);
        let (template, text) = self.templates.choose(Task::UidIid2Rank.as_str(), rng);
        let mut shown = c.line.candidates.to_vec();
        shown.shuffle(rng);
        let slots = vec![c.user.clone(), r.candidates(&shown)];
        TaskRecord {
            task: Task::UidIid2Rank,
            question: fill(text, &slots),
            answer,
            slots,
            uid: Some(c.line.uid),
            iid: i64::from(c.line.iid),
            target: None,
            item_tokens: r.item_tokens(&shown),
            candidates: shown,
            ranking: c.line.candidates.to_vec(),
            history: c.history.to_vec(),
            template_set: Task::UidIid2Rank.as_str().to_string(),
            template,
        }
    }

    /// `uidiid2binary`: "Yes" for the positive item, then "No" for the negative item, each with
    /// its own template draw.
    fn binary_records(&self, c: &TopContext, rng: &mut ChaCha8Rng) -> [TaskRecord; 2] {
        let r = self.renderer();
        let one = |target: u32, answer: &str, rng: &mut ChaCha8Rng| {
            let mut d = Draft::user(
                Task::UidIid2Binary,
                c.line.uid,
                i64::from(c.line.iid),
                c.history,
                vec![c.user.clone(), r.item(target)],
                answer.to_string(),
            );
            d.target = Some(target);
            d.item_tokens = r.item_tokens(&[target]);
            self.finish(d, rng)
        };
        let pos = one(c.line.pos, "Yes", rng);
        let neg = one(c.line.neg, "No", rng);
        [pos, neg]
    }
}

struct TopRngs {
    next: ChaCha8Rng,
    rank: ChaCha8Rng,
    binary: ChaCha8Rng,
}

/// A checked top-file line with its user's sequence, cut history and rendered user slot.
struct TopContext<'a, 'l> {
    line: &'l TopLine,
    seq: &'a [u32],
    history: &'a [u32],
    user: String,
}

/// The §1.8 queries, one per user in uid order, for an LLM to write the `uid2summary` answers:
/// the instruction `templates.summary_query` filled with the titles of the last `max_hist_len`
/// items before the user's last item.
pub fn summary_queries(
    ds: &Dataset,
    templates: &Templates,
    separator: &str,
    max_hist_len: usize,
) -> Vec<(u32, String)> {
    let r = Renderer::new(ds, Mode::Behaviour, separator);
    ds.users()
        .filter(|(_, seq)| !seq.is_empty())
        .map(|(uid, seq)| {
            let history = last_n(&seq[..seq.len() - 1], max_hist_len);
            (uid, fill(&templates.summary_query, &[r.titles(history)]))
        })
        .collect()
}

/// MF valid users are the last 10 % of user ids (`uid > 0.9 * n_users`).
pub fn is_mf_valid_user(uid: u32, n_users: usize) -> bool {
    f64::from(uid) > MF_VALID_USER_FRACTION * n_users as f64
}

/// An MF top file must hold 6 consecutive lines per user.
fn check_mf_groups(file: &TopFile) -> Result<()> {
    if !file.lines.len().is_multiple_of(MF_LINES_PER_USER) {
        return Err(Error::bad_input(
            &file.path,
            file.lines.len(),
            format!(
                "an MF top file has {MF_LINES_PER_USER} lines per user, but this one has {} lines",
                file.lines.len()
            ),
        ));
    }
    for (g, group) in file.lines.chunks(MF_LINES_PER_USER).enumerate() {
        if let Some(k) = group.iter().position(|l| l.uid != group[0].uid) {
            return Err(Error::bad_input(
                &file.path,
                g * MF_LINES_PER_USER + k + 1,
                format!(
                    "expected {MF_LINES_PER_USER} consecutive lines of user {}, found user {}",
                    group[0].uid, group[k].uid
                ),
            ));
        }
    }
    Ok(())
}

/// The description used by `iid2description`: the first entry longer than 50 characters, else the
/// first non-empty entry; `None` when there is none.
pub fn pick_description(entries: &[String]) -> Option<&str> {
    entries
        .iter()
        .find(|d| d.chars().count() > DESCRIPTION_MIN_CHARS)
        .or_else(|| entries.iter().find(|d| !d.is_empty()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_long_description() {
        let short = "short".to_string();
        let long = "x".repeat(51);
        assert_eq!(
            pick_description(&[short.clone(), long.clone()]),
            Some(long.as_str())
        );
        assert_eq!(
            pick_description(&[String::new(), short.clone()]),
            Some("short")
        );
        assert_eq!(pick_description(&[String::new()]), None);
        assert_eq!(pick_description(&[]), None);
    }

    #[test]
    fn mf_valid_users_are_the_last_tenth() {
        assert!(!is_mf_valid_user(9, 10));
        assert!(is_mf_valid_user(10, 10));
        assert!(!is_mf_valid_user(90, 100));
        assert!(is_mf_valid_user(91, 100));
    }
}
