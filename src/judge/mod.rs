//! The LLM judge (spec §6.2–6.3): an OpenAI-compatible chat model rates each explanation on the
//! paper's four levels, A (wrong decision) = 0 … D (satisfying explanation) = 3, and the stage
//! reports the mean rating of the paper's Table 2: for every explainer of the explanation stage
//! (the aligned model's as `rating_mean`, the others as `rating_mean.unaligned`, ...), on the
//! valid split only (the train split's explanations are the discriminators' training data).
//!
//! The endpoint is GPT-4 by default or any OpenAI-compatible server (`base_url`), asked through
//! [`crate::openai`], which also writes the alignment stage's user summaries: the API key is
//! read from the environment variable the spec names, only when a request is sent, and every
//! answer is kept in the store's response cache, so rerunning or resuming never pays twice.
//! The stage runs only when the spec sets `judge.enabled = true`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Result;
use crate::explain::{EXPLANATIONS, ExplainSplit, Explainer, Explanation, metric_suffix};
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::openai::{Azure, Endpoint, ask_all};
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings};
use crate::spec::{RawSpec, Validate, Validator, limits};

pub mod human;

/// The stage's output file: one rating per explanation.
pub const RATINGS: &str = "ratings.jsonl";

/// Changes whenever the prompt text below changes (part of the stage hash and the cache key).
pub const PROMPT_VERSION: &str = "judge-prompt/v1";

/// `[judge]`: the LLM judge endpoint (paper §6.2). The API key is read from the environment
/// variable named here and never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeSection {
    /// Run the judge (it needs an endpoint and usually costs money).
    pub enabled: bool,
    pub model: String,
    /// OpenAI-compatible base URL (e.g. `http://localhost:8000/v1`, or `recx serve`'s
    /// `http://127.0.0.1:8080/v1`); empty = the OpenAI default.
    pub base_url: String,
    /// `[judge.azure]`: an Azure OpenAI deployment (endpoint, deployment, api_version) instead of
    /// `base_url`; the key goes in an `api-key` header. Left out of the serialized spec when
    /// unset, so specs without it keep their hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure: Option<Azure>,
    /// Name of the environment variable holding the API key; empty = send none (a local server
    /// such as `recx serve` without `--api-key-env`).
    pub api_key_env: String,
    pub temperature: f64,
    pub max_tokens: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request beyond the first, with jittered exponential back-off (or after the
    /// server's `Retry-After`); only timeouts, 408, 429 and 5xx are retried.
    pub max_retries: usize,
    /// Seconds one request may take before it counts as failed (and is retried).
    pub timeout_s: f64,
    /// Accept a `<score>x</score>` anywhere in the answer; the original (`strict`) accepts only
    /// an answer that is exactly that tag and counts anything else as an error.
    pub lenient: bool,
    /// The system message sent before each judge prompt (the original's `gpt_api.py` always
    /// sends one); empty = none.
    pub system_prompt: String,
}

impl Default for JudgeSection {
    fn default() -> Self {
        JudgeSection {
            enabled: false,
            model: "gpt-4".into(),
            base_url: String::new(),
            azure: None,
            api_key_env: "OPENAI_API_KEY".into(),
            temperature: 1.0,
            max_tokens: 500,
            concurrency: 4,
            max_retries: 3,
            timeout_s: 120.0,
            lenient: false,
            system_prompt: ORIGINAL_SYSTEM.into(),
        }
    }
}

impl Validate for JudgeSection {
    fn validate(&self, v: &mut Validator) {
        v.in_range("temperature", self.temperature, 0.0, 2.0);
        let env_ok = self
            .api_key_env
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        v.check(env_ok, "api_key_env", || {
            "must be the NAME of an environment variable (the key itself never goes in a spec), \
             or empty for a server that checks no key"
                .into()
        });
        if let Some(azure) = &self.azure {
            for (key, message) in azure.problems() {
                v.error(&format!("azure.{key}"), message);
            }
            v.check(self.base_url.is_empty(), "base_url", || {
                "must be empty when [judge.azure] names the deployment".into()
            });
        }
        v.count("concurrency", self.concurrency, 1, limits::MAX_CONCURRENCY);
        v.count("max_tokens", self.max_tokens, 1, limits::MAX_TOKENS);
        v.count("max_retries", self.max_retries, 0, limits::MAX_RETRIES);
        v.positive("timeout_s", self.timeout_s, limits::MAX_TIMEOUT_S);
        v.check(
            self.base_url.is_empty() || self.base_url.starts_with("http"),
            "base_url",
            || format!("{:?} is not an http(s) URL", self.base_url),
        );
    }
}

/// The system message of the original's `gpt_api.py` (spec §6.1, §1.8).
pub const ORIGINAL_SYSTEM: &str = "You are a helpful assistant. \n";

/// The judge's instructions (our wording of the original's four-level rubric, spec §6.2).
const RUBRIC: &str = "Please act as an impartial judge and evaluate the AI assistant's \
recommendation decision and its explanation, based on the user's purchase history, the target \
item and the ground-truth label. Assign exactly one of four levels:\n\
A: Incorrect classification. The assistant's decision is wrong.\n\
B: Correct classification, insufficient explanation. The explanation gives no, few or \
irrelevant reasons, or contains made-up content.\n\
C: Correct classification, acceptable explanation. The explanation is logically consistent \
with the history and the target item, but has minor flaws: it is not persuasive or \
informative enough.\n\
D: Correct classification, satisfying explanation. The explanation summarises the patterns and \
traits of the user's history and thoroughly analyses the consistency or inconsistency between \
the user's preferences and the target item.\n\
Be objective, and do not let the length of the answer influence your judgement. Give your \
score in the form <score>label</score>, for example <score>C</score>.";

/// The rubric's four levels, one line each (`A: ...` to `D: ...`), for people rating by hand.
pub fn rubric_levels() -> String {
    let is_level = |l: &&str| matches!(l.as_bytes(), [b'A'..=b'D', b':', ..]);
    RUBRIC
        .lines()
        .filter(is_level)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The full judge prompt for one explanation.
pub fn judge_prompt(e: &Explanation) -> String {
    format!(
        "{RUBRIC}\n\nKnown information:\nUser history: {}\nTarget item: {}\nLabel: {}\n\n\
         Assistant's output: {}",
        e.history_titles.join(", "),
        e.target_title,
        e.label,
        e.explanation
    )
}

/// The rating in a judge answer: strict = the whole answer (stripped, lowercased) is
/// `<score>a</score>` … `<score>d</score>` (the original's rule); lenient = the last such tag
/// anywhere. A = 0 … D = 3.
pub fn parse_rating(answer: &str, lenient: bool) -> Option<u8> {
    let text = answer.trim().to_lowercase();
    let level = |tag: &str| match tag {
        "a" => Some(0),
        "b" => Some(1),
        "c" => Some(2),
        "d" => Some(3),
        _ => None,
    };
    if !lenient {
        return text
            .strip_prefix("<score>")
            .and_then(|t| t.strip_suffix("</score>"))
            .and_then(|t| level(t.trim()));
    }
    text.rmatch_indices("<score>").find_map(|(i, _)| {
        let rest = &text[i + "<score>".len()..];
        let end = rest.find("</score>")?;
        level(rest[..end].trim())
    })
}

/// One rated explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    pub case: String,
    /// Whose explanation was rated (absent in older files: the aligned model's).
    #[serde(default = "aligned_explainer")]
    pub explainer: Explainer,
    pub label: String,
    /// `None` when the answer holds no valid score (excluded from the mean, counted as error).
    pub rating: Option<u8>,
    pub answer: String,
}

fn aligned_explainer() -> Explainer {
    Explainer::Aligned
}

/// The judge stage.
pub struct JudgeStage;

/// The judge's settings are its section; the prompt's version joins them in the hash.
impl StageSettings for JudgeSection {
    fn fingerprint(&self) -> Value {
        json!({ "section": self, "prompt": PROMPT_VERSION })
    }
}

impl Stage for JudgeStage {
    fn kind(&self) -> StageKind {
        StageKind::Judge
    }

    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Explain]
    }

    fn enabled(&self, spec: &RawSpec) -> bool {
        spec.judge.enabled
    }

    fn settings(&self, spec: &RawSpec, _spec_dir: &Path, _run_seed: u64) -> Result<Resolved> {
        Ok(Resolved::new(spec.judge.clone()))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let section = ctx.settings::<JudgeSection>()?;
        // The judge rates the valid explanations (the paper's 500 test cases) of every explainer.
        let explanations: Vec<Explanation> =
            read_jsonl::<Explanation>(&ctx.input(StageKind::Explain).join(EXPLANATIONS))?
                .into_iter()
                .filter(|e| e.split == ExplainSplit::Valid)
                .collect();
        let prompts: Vec<String> = explanations.iter().map(judge_prompt).collect();
        let bar = ctx.progress.bar(prompts.len() as u64, "judge");
        let answers = ask_all(
            &section.endpoint(),
            section.system_message(),
            &prompts,
            ctx.cache,
            &|| bar.inc(1),
        )?;
        bar.finish_and_clear();

        let mut ratings = Vec::with_capacity(answers.len());
        // Rating counts A..D per explainer, in the order explainers first appear.
        let mut counts: Vec<(Explainer, [usize; 4], usize)> = Vec::new();
        for (e, answer) in explanations.iter().zip(answers) {
            let rating = parse_rating(&answer, section.lenient);
            let at = match counts.iter().position(|(x, _, _)| *x == e.explainer) {
                Some(at) => at,
                None => {
                    counts.push((e.explainer, [0; 4], 0));
                    counts.len() - 1
                }
            };
            counts[at].2 += 1;
            let suffix = metric_suffix(e.explainer, ExplainSplit::Valid);
            if let Some(r) = rating {
                counts[at].1[r as usize] += 1;
                ctx.recorder
                    .example(&format!("rating{suffix}"), &e.case_id(), f64::from(r));
            }
            ratings.push(Rating {
                case: e.case_id(),
                explainer: e.explainer,
                label: e.label.clone(),
                rating,
                answer,
            });
        }
        for (explainer, counts, asked) in &counts {
            let suffix = metric_suffix(*explainer, ExplainSplit::Valid);
            let rated: usize = counts.iter().sum();
            let total: usize = counts.iter().enumerate().map(|(r, n)| r * n).sum();
            ctx.recorder.scalar(&format!("rated{suffix}"), rated as f64);
            ctx.recorder
                .scalar(&format!("errors{suffix}"), (asked - rated) as f64);
            if rated > 0 {
                ctx.recorder
                    .scalar(&format!("rating_mean{suffix}"), total as f64 / rated as f64);
            }
            for (r, n) in counts.iter().enumerate() {
                ctx.recorder
                    .scalar(&format!("rating_count{suffix}.{r}"), *n as f64);
            }
        }
        let rated = ratings.iter().filter(|r| r.rating.is_some()).count();
        let counts: Vec<[usize; 4]> = counts.iter().map(|c| c.1).collect();
        tracing::info!(
            "judge: {rated} of {} explanations rated, counts A..D {counts:?}",
            ratings.len()
        );
        write_jsonl(&ctx.out_dir().join(RATINGS), &ratings)
    }
}

impl JudgeSection {
    /// The system message of each judge request (`None` when `system_prompt` is empty).
    pub fn system_message(&self) -> Option<&str> {
        Some(self.system_prompt.as_str()).filter(|s| !s.is_empty())
    }

    /// The chat endpoint this section configures (the judge's, and the `uid2summary` writer's).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            azure: self.azure.clone(),
            api_key_env: self.api_key_env.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            concurrency: self.concurrency,
            max_retries: self.max_retries,
            timeout_s: self.timeout_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::request_key;

    #[test]
    fn strict_parsing_follows_the_original() {
        assert_eq!(parse_rating("<score>D</score>", false), Some(3));
        assert_eq!(parse_rating("  <SCORE>a</SCORE>\n", false), Some(0));
        assert_eq!(parse_rating("The answer: <score>c</score>", false), None);
        assert_eq!(parse_rating("<score>e</score>", false), None);
        assert_eq!(parse_rating("The answer: <score>c</score>", true), Some(2));
        assert_eq!(
            parse_rating("<score>b</score> no, <score>d</score>", true),
            Some(3)
        );
        assert_eq!(parse_rating("no tag", true), None);
    }

    #[test]
    fn the_prompt_carries_the_case_and_the_cache_key_ignores_the_secret() {
        let e = Explanation {
            uid: 1,
            iid: -1,
            target: 5,
            label: "Yes".into(),
            score: 2.5,
            history_titles: vec!["Halo".into(), "Zelda".into()],
            target_title: "Portal".into(),
            question: "q".into(),
            explanation: "Yes, because …".into(),
            explainer: Explainer::Aligned,
            split: ExplainSplit::Valid,
        };
        let p = judge_prompt(&e);
        assert!(p.contains("User history: Halo, Zelda\nTarget item: Portal\nLabel: Yes"));
        assert!(p.ends_with("Assistant's output: Yes, because …"));
        let s = JudgeSection::default();
        let other_env = JudgeSection {
            api_key_env: "OTHER_KEY".into(),
            ..JudgeSection::default()
        };
        assert_eq!(
            request_key(&s.endpoint(), None, &p),
            request_key(&other_env.endpoint(), None, &p)
        );
        let hotter = JudgeSection {
            temperature: 0.0,
            ..JudgeSection::default()
        };
        assert_ne!(
            request_key(&s.endpoint(), None, &p),
            request_key(&hotter.endpoint(), None, &p)
        );
        assert_ne!(
            request_key(&s.endpoint(), None, &p),
            request_key(&s.endpoint(), Some("system"), &p)
        );
    }

    #[test]
    fn the_original_system_message_is_sent_unless_emptied() {
        let s = JudgeSection::default();
        assert_eq!(s.system_message(), Some("You are a helpful assistant. \n"));
        let none = JudgeSection {
            system_prompt: String::new(),
            ..JudgeSection::default()
        };
        assert_eq!(none.system_message(), None);
    }
}
