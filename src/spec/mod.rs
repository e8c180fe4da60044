//! Experiment specs, low layer: the TOML file as written by a person.
//!
//! Parsing is strict (`deny_unknown_fields` everywhere) and every problem is reported with the
//! file, line, column and key path, because a typo in a spec otherwise silently costs a
//! multi-hour run. Stage modules own their section types (`data::DataSection`, ...) and implement
//! [`Validate`]; this module assembles them, parses, and locates errors. The high layer, the
//! resolved and hashed plan, lives in `crate::plan`.

mod location;
mod sections;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use location::SourceMap;
pub use sections::*;

use crate::error::{Error, IoContext, Result};

/// One problem in a spec, with its key path and (when known) its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecIssue {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// Dotted key path such as `alignment.mode` (empty for whole-file problems).
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.col) {
            write!(f, ":{l}:{c}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// All problems found in one spec, one per line when displayed.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecIssues(pub Vec<SpecIssue>);

impl fmt::Display for SpecIssues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecIssues {}

/// Collects validation problems under a key path.
#[derive(Debug, Default)]
pub struct Validator {
    prefix: Vec<String>,
    issues: Vec<(String, String)>,
}

impl Validator {
    /// Validates a nested section under `key`.
    pub fn section(&mut self, key: &str, section: &impl Validate) {
        self.prefix.push(key.to_string());
        section.validate(self);
        self.prefix.pop();
    }

    /// Records a problem with `key` (relative to the current section).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let mut path = self.prefix.join(".");
        if !key.is_empty() {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
        self.issues.push((path, message.into()));
    }

    /// Records a problem unless `ok`.
    pub fn check(&mut self, ok: bool, key: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.error(key, message());
        }
    }

    /// Checks `lo <= value <= hi`.
    pub fn in_range<T: PartialOrd + fmt::Display>(&mut self, key: &str, value: T, lo: T, hi: T) {
        if !(value >= lo && value <= hi) {
            self.error(
                key,
                format!("{value} is out of range; expected {lo} ..= {hi}"),
            );
        }
    }

    pub fn into_issues(self) -> Vec<(String, String)> {
        self.issues
    }
}

/// Semantic checks of a parsed section; serde already checked names and types.
pub trait Validate {
    fn validate(&self, v: &mut Validator);
}

/// Declares a string-valued enum for specs: serde as lowercase words, with an error message
/// that lists the choices, e.g. `unknown mode "intentions"; expected behaviour | intention`.
#[macro_export]
macro_rules! spec_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident ($noun:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> ::std::result::Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {:?}; expected {}",
                        $noun,
                        other,
                        [$($text),+].join(" | ")
                    )),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// A parsed, validated spec together with its source text.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: PathBuf,
    pub text: String,
    pub raw: RawSpec,
}

impl Spec {
    /// Reads, parses and validates a spec file.
    pub fn load(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).at(path)?;
        Spec::parse(path, &text)
    }

    /// Parses and validates spec text; `path` is used in messages and to resolve relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Spec> {
        let map = SourceMap::new(text);
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let (line, col, key) = match e.span() {
                Some(span) => {
                    let (l, c) = map.line_col(span.start);
                    (
                        Some(l),
                        Some(c),
                        map.path_at(span.start).unwrap_or("").to_string(),
                    )
                }
                None => (None, None, String::new()),
            };
            Error::Spec(SpecIssues(vec![SpecIssue {
                file: path.to_path_buf(),
                line,
                col,
                key,
                message: e.message().trim().to_string(),
            }]))
        })?;
        let mut v = Validator::default();
        raw.validate(&mut v);
        let issues: Vec<SpecIssue> = v
            .into_issues()
            .into_iter()
            .map(|(key, message)| {
                let pos = map.locate(&key);
                SpecIssue {
                    file: path.to_path_buf(),
                    line: pos.map(|p| p.0),
                    col: pos.map(|p| p.1),
                    key,
                    message,
                }
            })
            .collect();
        if !issues.is_empty() {
            return Err(Error::Spec(SpecIssues(issues)));
        }
        Ok(Spec {
            path: path.to_path_buf(),
            text: text.to_string(),
            raw,
        })
    }

    /// Resolves a path written in the spec relative to the spec file's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        resolve_spec_path(self.path.parent().unwrap_or(Path::new(".")), p)
    }
}

/// A path written in a spec: absolute as given, relative to the spec file's folder otherwise.
pub fn resolve_spec_path(spec_dir: &Path, p: impl AsRef<Path>) -> PathBuf {
    // `join` keeps an absolute `p` as it is.
    spec_dir.join(p)
}

/// The whole experiment file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub experiment: ExperimentSection,
    #[serde(default)]
    pub data: crate::data::DataSection,
    #[serde(default)]
    pub recommender: crate::recommender::RecommenderSection,
    #[serde(default)]
    pub alignment: AlignmentSection,
    #[serde(default)]
    pub llm: LlmSection,
    #[serde(default)]
    pub train: TrainSection,
    #[serde(default)]
    pub eval: EvalSection,
    #[serde(default)]
    pub explain: ExplainSection,
    #[serde(default)]
    pub judge: JudgeSection,
    #[serde(default)]
    pub discriminator: DiscriminatorSection,
    #[serde(default)]
    pub report: ReportSection,
    #[serde(default)]
    pub sweep: SweepSection,
}

impl Validate for RawSpec {
    fn validate(&self, v: &mut Validator) {
        v.section("experiment", &self.experiment);
        v.section("data", &self.data);
        v.section("recommender", &self.recommender);
        v.section("alignment", &self.alignment);
        v.section("llm", &self.llm);
        v.section("train", &self.train);
        v.section("eval", &self.eval);
        v.section("explain", &self.explain);
        v.section("judge", &self.judge);
        v.section("discriminator", &self.discriminator);
        v.section("report", &self.report);
        v.section("sweep", &self.sweep);
    }
}

/// Where a stage takes its random seed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSetting {
    /// The run's seed from `experiment.seeds` (so the stage differs between seeds).
    Run,
    /// A fixed seed (so the stage is shared by all seeds of an experiment).
    Fixed(u64),
}

impl SeedSetting {
    pub fn resolve(self, run_seed: u64) -> u64 {
        match self {
            SeedSetting::Run => run_seed,
            SeedSetting::Fixed(s) => s,
        }
    }
}

impl Serialize for SeedSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            SeedSetting::Run => s.serialize_str("run"),
            SeedSetting::Fixed(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for SeedSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a seed: a non-negative integer or \"run\"")
        })? {
            Raw::N(n) => Ok(SeedSetting::Fixed(n)),
            Raw::S(s) if s == "run" => Ok(SeedSetting::Run),
            Raw::S(s) => Err(serde::de::Error::custom(format!(
                "unknown seed {s:?}; expected a non-negative integer or \"run\""
            ))),
        }
    }
}
