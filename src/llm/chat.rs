//! Chat templates: how a question and answer become the text the model reads (spec §4.4), which
//! tokens the loss covers (§4.5), and how a generation is cut back to the answer (§5.1).
//!
//! The five backbones of RecExplainer (vicuna, mistral, llama-2, llama-3, phi3) are rendered
//! exactly as its FastChat-derived `conversation.py` does, plus chatml for SmolLM2/Qwen.
//!
//! The loss span is found from character positions, not by re-tokenising the instruction and
//! subtracting a per-template offset as the original does: the renderer records the byte ranges
//! of every assistant answer plus its end-of-turn marker, and a token is trained on when its
//! span overlaps one of them. This gives the span the spec describes (answer + end-of-turn, on
//! every assistant turn of a multi-turn ShareGPT conversation) for any tokenizer, without the
//! original's "tokenization mismatch" failure mode. Where the inference prompt ends before a
//! space (vicuna's `ASSISTANT:`, `[/INST]`), that space belongs to the trained range, since the
//! model has to generate it (with SentencePiece it is the `▁` of the first answer token anyway).
//! Tokens after the end-of-turn marker (llama-2's `<s>`, the newline after phi3's `<|end|>` and
//! chatml's `<|im_end|>`) are not trained on.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::llm::tokenizer::{BpeTrainConfig, Tokenizer};

crate::spec_enum! {
    /// A chat template name as written in a spec (`llm.template`).
    pub enum TemplateName ("template") {
        Vicuna = "vicuna",
        Mistral = "mistral",
        Llama2 = "llama-2",
        Llama3 = "llama-3",
        Phi3 = "phi3",
        Chatml = "chatml",
    }
}

/// Vicuna v1.1+ system message (FastChat `vicuna_v1.1`).
pub const VICUNA_SYSTEM: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
/// Phi-3's system message in RecExplainer's template.
pub const PHI3_SYSTEM: &str = "You are a helpful AI assistant.";
/// SmolLM2-Instruct's default system message (from the GGUF's `tokenizer.chat_template`).
pub const SMOLLM2_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    /// ShareGPT's `from` field: `human` or `gpt`.
    pub fn from_sharegpt(from: &str) -> Option<Role> {
        match from {
            "human" => Some(Role::User),
            "gpt" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

impl Turn {
    pub fn user(text: impl Into<String>) -> Turn {
        Turn {
            role: Role::User,
            text: text.into(),
        }
    }

    pub fn assistant(text: impl Into<String>) -> Turn {
        Turn {
            role: Role::Assistant,
            text: text.into(),
        }
    }
}

/// A rendered training conversation: the text and the byte ranges the loss covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Each assistant answer plus its end-of-turn marker, as byte ranges of `text`.
    pub trained: Vec<Range<usize>>,
}

/// A tokenized training conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingSample {
    pub ids: Vec<u32>,
    /// `true` where the token is a target of the loss (answer + end-of-turn).
    pub loss_mask: Vec<bool>,
}

impl TrainingSample {
    /// HF-style labels: the id where trained, −100 elsewhere (the loss shifts them by one).
    pub fn labels(&self) -> Vec<i64> {
        self.ids
            .iter()
            .zip(&self.loss_mask)
            .map(|(&id, &m)| if m { id as i64 } else { -100 })
            .collect()
    }

    /// The trained token ids, in order.
    pub fn trained_ids(&self) -> Vec<u32> {
        self.ids
            .iter()
            .zip(&self.loss_mask)
            .filter(|(_, m)| **m)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Cut to `max_len` tokens from the right, then right-padded to exactly `max_len` with
    /// `pad_id` (masked out of the loss), as the original pads every sample to 1024 (§4.5).
    /// `None` when truncation left nothing to train on (the original then draws another sample).
    pub fn padded(&self, max_len: usize, pad_id: u32) -> Option<PaddedSample> {
        let n = self.ids.len().min(max_len);
        if !self.loss_mask[..n].iter().any(|&m| m) {
            return None;
        }
        let mut ids = self.ids[..n].to_vec();
        let mut loss_mask = self.loss_mask[..n].to_vec();
        let mut attention_mask = vec![true; n];
        ids.resize(max_len, pad_id);
        loss_mask.resize(max_len, false);
        attention_mask.resize(max_len, false);
        Some(PaddedSample {
            ids,
            loss_mask,
            attention_mask,
        })
    }
}

/// A training sample of fixed length (see [`TrainingSample::padded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedSample {
    pub ids: Vec<u32>,
    pub loss_mask: Vec<bool>,
    /// `false` on padding.
    pub attention_mask: Vec<bool>,
}

/// Left-pads prompts to a common length for batched generation (spec §5.1: inference pads on
/// the left so every prompt ends at the last position). Prompts longer than `max_len` keep
/// their first `max_len` tokens, as HF's right-side truncation does (which can cut off the
/// assistant header of an over-long prompt; spec §9.12). Returns ids and attention masks.
pub fn left_pad(
    prompts: &[Vec<u32>],
    pad_id: u32,
    max_len: usize,
) -> (Vec<Vec<u32>>, Vec<Vec<bool>>) {
    let width = prompts
        .iter()
        .map(|p| p.len().min(max_len))
        .max()
        .unwrap_or(0);
    prompts
        .iter()
        .map(|p| {
            let kept = &p[..p.len().min(max_len)];
            let pad = width - kept.len();
            let mut ids = vec![pad_id; pad];
            ids.extend_from_slice(kept);
            let mut mask = vec![false; pad];
            mask.resize(width, true);
            (ids, mask)
        })
        .unzip()
}

/// A chat template with its system message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    name: TemplateName,
    system: String,
}

/// Text being rendered, with the trained ranges recorded as they are written.
#[derive(Default)]
struct Writer {
    text: String,
    trained: Vec<Range<usize>>,
}

impl Writer {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn push_trained(&mut self, s: &str) {
        let start = self.text.len();
        self.text.push_str(s);
        self.trained.push(start..self.text.len());
    }
}

impl ChatTemplate {
    /// The template with its default system message (empty for mistral, llama-2 and llama-3,
    /// as in RecExplainer; SmolLM2's for chatml).
    pub fn new(name: TemplateName) -> ChatTemplate {
        let system = match name {
            TemplateName::Vicuna => VICUNA_SYSTEM,
            TemplateName::Phi3 => PHI3_SYSTEM,
            TemplateName::Chatml => SMOLLM2_SYSTEM,
            TemplateName::Mistral | TemplateName::Llama2 | TemplateName::Llama3 => "",
        };
        ChatTemplate {
            name,
            system: system.to_string(),
        }
    }

    /// Replaces the system message (empty = none, for templates that allow leaving it out).
    pub fn with_system(mut self, system: impl Into<String>) -> ChatTemplate {
        self.system = system.into();
        self
    }

    pub fn name(&self) -> TemplateName {
        self.name
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    /// The inference prompt for one question; it ends right after the assistant header.
    pub fn prompt(&self, question: &str) -> String {
        self.render(&[Turn::user(question)], true)
            .expect("one user turn is a valid conversation")
            .text
    }

    /// The inference prompt for a conversation ending with a user turn.
    pub fn prompt_conversation(&self, turns: &[Turn]) -> Result<String> {
        Ok(self.render(turns, true)?.text)
    }

    /// The training string for one question and answer.
    pub fn training_text(&self, question: &str, answer: &str) -> String {
        self.render_training(&[Turn::user(question), Turn::assistant(answer)])
            .expect("a user turn then an assistant turn is a valid conversation")
            .text
    }

    /// Renders a training conversation (alternating turns, user first, assistant last).
    pub fn render_training(&self, turns: &[Turn]) -> Result<Rendered> {
        self.render(turns, false)
    }

    /// Tokenizes a training conversation and marks the tokens the loss covers. The tokenizer
    /// adds BOS as it is configured (so llama-3 starts with two BOS, as in the original).
    pub fn training_sample(&self, tok: &Tokenizer, turns: &[Turn]) -> Result<TrainingSample> {
        let rendered = self.render_training(turns)?;
        let enc = tok.encode_with_offsets(&rendered.text, true)?;
        let loss_mask = enc
            .offsets
            .iter()
            .map(|&(s, e)| s < e && rendered.trained.iter().any(|r| s < r.end && e > r.start))
            .collect();
        Ok(TrainingSample {
            ids: enc.ids,
            loss_mask,
        })
    }

    /// Token ids of the inference prompt for one question (BOS added as configured).
    pub fn prompt_ids(&self, tok: &Tokenizer, question: &str) -> Result<Vec<u32>> {
        tok.encode(&self.prompt(question), true)
    }

    /// The first token of `answer` as the model produces it right after the assistant header,
    /// e.g. `"▁Yes"` for vicuna/llama-2/mistral and `"Yes"` for llama-3/chatml (spec §5.3).
    pub fn answer_start_id(&self, tok: &Tokenizer, answer: &str) -> Result<u32> {
        let sample =
            self.training_sample(tok, &[Turn::user("Question"), Turn::assistant(answer)])?;
        sample.trained_ids().first().copied().ok_or_else(|| {
            Error::Tokenizer(format!(
                "answer {answer:?} gives no tokens under {}",
                self.name
            ))
        })
    }

    /// The `(Yes, No)` ids compared by the binary task (spec §5.3). Fails when both answers
    /// start with the same token (e.g. a lone space token), which would make the task meaningless.
    pub fn yes_no_ids(&self, tok: &Tokenizer) -> Result<(u32, u32)> {
        let (yes, no) = (
            self.answer_start_id(tok, "Yes")?,
            self.answer_start_id(tok, "No")?,
        );
        if yes == no {
            return Err(Error::Tokenizer(format!(
                "\"Yes\" and \"No\" both start with token {yes} ({:?}) under {}",
                tok.id_to_token(yes).unwrap_or_default(),
                self.name
            )));
        }
        Ok((yes, no))
    }

    /// The separator after which a decoded generation holds the answer (spec §5.1).
    pub fn assistant_separator(&self) -> &'static str {
        match self.name {
            TemplateName::Vicuna => " ASSISTANT:",
            TemplateName::Mistral | TemplateName::Llama2 => " [/INST]",
            TemplateName::Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
            TemplateName::Phi3 => "<|assistant|>\n",
            TemplateName::Chatml => "<|im_start|>assistant\n",
        }
    }

    /// Strings that end an answer, applied in this order when cutting a generation.
    pub fn stop_strings(&self) -> &'static [&'static str] {
        match self.name {
            TemplateName::Vicuna | TemplateName::Mistral | TemplateName::Llama2 => &["</s>"],
            TemplateName::Llama3 => &["<|eot_id|>", "<|end_of_text|>"],
            TemplateName::Phi3 => &["<|end|>", "<|endoftext|>"],
            TemplateName::Chatml => &["<|im_end|>", "<|endoftext|>"],
        }
    }

    /// Token ids that end generation: the stop strings that are single tokens, then EOS
    /// (llama-3: 128009, 128001; phi3: 32007 first).
    pub fn stop_token_ids(&self, tok: &Tokenizer) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        let candidates = self
            .stop_strings()
            .iter()
            .filter_map(|s| tok.token_to_id(s))
            .chain(tok.eos_id());
        for id in candidates {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Tokens generation must never produce (spec §5.1): pad, bos, unk and the placeholders;
    /// for llama-3 and chatml every special token. Stop tokens are never banned.
    pub fn banned_ids(&self, tok: &Tokenizer) -> Vec<u32> {
        let mut ids: Vec<u32> = [tok.pad_id(), tok.bos_id(), tok.unk_id()]
            .into_iter()
            .flatten()
            .collect();
        if let Some(p) = tok.placeholders() {
            ids.extend([p.user, p.item]);
        }
        if matches!(self.name, TemplateName::Llama3 | TemplateName::Chatml) {
            ids.extend(tok.special_token_ids());
        }
        let stops = self.stop_token_ids(tok);
        ids.retain(|id| !stops.contains(id));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Cuts a decoded generation (prompt included, special tokens kept) to the answer: the text
    /// after the first assistant separator, cut at each stop string in turn (spec §5.1). Text
    /// without the separator is taken whole.
    ///
    /// This relies on the prompt surviving decode(encode(prompt)); with SentencePiece tokenizers a
    /// text segment after a special token gains a leading space (`<|assistant|>\n` decodes as
    /// `<|assistant|> \n`), so prefer [`cut_at_stops`](Self::cut_at_stops) on the decoded
    /// generated ids alone, which gives the same answer without that dependency.
    pub fn extract_answer<'a>(&self, decoded: &'a str) -> &'a str {
        let sep = self.assistant_separator();
        self.cut_at_stops(decoded.split_once(sep).map_or(decoded, |(_, a)| a))
    }

    /// Cuts decoded generated text at each stop string in turn.
    pub fn cut_at_stops<'a>(&self, generated: &'a str) -> &'a str {
        let mut answer = generated;
        for stop in self.stop_strings() {
            answer = answer.split(stop).next().unwrap_or_default();
        }
        answer
    }

    /// The template as an HF Jinja `chat_template` (for `tokenizer_config.json`), so that
    /// `transformers`' `apply_chat_template` renders exactly what recx trains on and prompts with.
    /// With `bos`, the text starts with that BOS token string, because `apply_chat_template`
    /// tokenizes without adding special tokens while recx's tokenizer adds BOS. It is written
    /// from the same [`Layout`] as [`render`](Self::render), so the two cannot drift apart
    /// (`tests/it/llm_chat.rs` renders both, the Jinja one with Python's jinja2).
    pub fn jinja(&self, bos: Option<&str>) -> String {
        let l = self.layout();
        let lit = |s: &str| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('\n', "\\n");
            format!("'{escaped}'")
        };
        let out = |s: &str| format!("{{{{ {} }}}}", lit(s));
        let trim = if l.trim { " | trim" } else { "" };
        let content = format!("(message['content']{trim})");
        let mut j = format!("{{% set system = {} %}}", lit(&self.system));
        j.push_str(&out(bos.unwrap_or_default()));
        j.push_str(&out(l.start));
        j.push_str(&format!(
            "{{% if system %}}{{{{ {} + (system{trim}) + {} }}}}{{% else %}}{}{{% endif %}}",
            lit(l.system_open),
            lit(l.system_close),
            out(l.no_system)
        ));
        j.push_str(&format!(
            "{{% for message in messages %}}{{% if message['role'] == 'user' %}}\
             {{% if loop.first %}}{}{{% else %}}{}{{% endif %}}{{{{ {content} + {} }}}}\
             {{% else %}}{{{{ {} + {content} + {} }}}}{{% endif %}}{{% endfor %}}",
            out(l.user_first),
            out(l.user_open),
            lit(l.user_close),
            lit(&format!("{}{}", l.assistant_open, l.answer_lead)),
            lit(&format!("{}{}", l.answer_end, l.assistant_after)),
        ));
        j.push_str(&format!(
            "{{% if add_generation_prompt %}}{}{{% endif %}}",
            out(l.assistant_open)
        ));
        j
    }

    /// [`jinja`](Self::jinja) with the BOS that `tok` adds, ready for
    /// [`Tokenizer::save_pretrained`].
    pub fn jinja_for(&self, tok: &Tokenizer) -> String {
        let bos = tok
            .adds_bos()
            .then(|| tok.bos_id().and_then(|id| tok.id_to_token(id)))
            .flatten();
        self.jinja(bos.as_deref())
    }

    /// The template's marker tokens, which a tokenizer trained from scratch must hold as
    /// special tokens.
    pub fn marker_tokens(&self) -> &'static [&'static str] {
        match self.name {
            TemplateName::Vicuna | TemplateName::Mistral | TemplateName::Llama2 => &["<s>", "</s>"],
            TemplateName::Llama3 => &[
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ],
            TemplateName::Phi3 => &[
                "<s>",
                "<|endoftext|>",
                "<|system|>",
                "<|user|>",
                "<|assistant|>",
                "<|end|>",
            ],
            TemplateName::Chatml => &["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        }
    }

    /// Settings to train a tokenizer from scratch for this template: its markers as special
    /// tokens and the BOS/EOS convention of the original backbone.
    pub fn bpe_train_config(&self, vocab_size: usize) -> BpeTrainConfig {
        let (bos, eos, pad) = match self.name {
            TemplateName::Vicuna | TemplateName::Mistral | TemplateName::Llama2 => {
                (Some("<s>"), "</s>", None)
            }
            TemplateName::Llama3 => (
                Some("<|begin_of_text|>"),
                "<|eot_id|>",
                Some("<|end_of_text|>"),
            ),
            TemplateName::Phi3 => (Some("<s>"), "<|end|>", Some("<|endoftext|>")),
            TemplateName::Chatml => (None, "<|im_end|>", Some("<|endoftext|>")),
        };
        BpeTrainConfig {
            vocab_size,
            special_tokens: self.marker_tokens().iter().map(|s| s.to_string()).collect(),
            bos: bos.map(String::from),
            eos: Some(eos.to_string()),
            pad: pad.map(String::from),
            add_bos: bos.is_some(),
            ..BpeTrainConfig::default()
        }
    }

    /// Renders `turns`; with `generation_prompt` the last turn is a user turn and the text ends
    /// with the assistant header, otherwise the last turn is the assistant's.
    fn render(&self, turns: &[Turn], generation_prompt: bool) -> Result<Rendered> {
        check_turns(turns, generation_prompt)?;
        let l = self.layout();
        let trim = |s: &str| (if l.trim { s.trim() } else { s }).to_string();
        let mut w = Writer::default();
        w.push(l.start);
        if self.system.is_empty() {
            w.push(l.no_system);
        } else {
            w.push(&format!(
                "{}{}{}",
                l.system_open,
                trim(&self.system),
                l.system_close
            ));
        }
        for (i, t) in turns.iter().enumerate() {
            match t.role {
                Role::User => {
                    w.push(if i == 0 { l.user_first } else { l.user_open });
                    w.push(&format!("{}{}", trim(&t.text), l.user_close));
                }
                Role::Assistant => {
                    w.push(l.assistant_open);
                    w.push_trained(&format!(
                        "{}{}{}",
                        l.answer_lead,
                        trim(&t.text),
                        l.answer_end
                    ));
                    w.push(l.assistant_after);
                }
            }
        }
        if generation_prompt {
            w.push(l.assistant_open);
        }
        Ok(Rendered {
            text: w.text,
            trained: w.trained,
        })
    }

    /// The template's text pieces: the one description both [`render`](Self::render) and
    /// [`jinja`](Self::jinja) are written from. Vicuna is FastChat's ADD_COLON_TWO
    /// (`{system} USER: {q} ASSISTANT: {a}</s>USER: ...`); mistral and llama-2 FastChat's LLAMA2
    /// (`[INST] {q} [/INST] {a}{eot}{after}[INST] ...`); llama-3 FastChat's LLAMA3 (a header per
    /// turn, stripped messages, `<|eot_id|>` after each); phi3 and chatml role tags
    /// (`{tag}{text}{end}\n` per turn).
    fn layout(&self) -> Layout {
        match self.name {
            TemplateName::Vicuna => Layout {
                no_system: " ",
                system_close: " ",
                user_first: "USER: ",
                user_open: "USER: ",
                user_close: " ",
                // The prompt ends at "ASSISTANT:", so the space is generated: train on it.
                assistant_open: "ASSISTANT:",
                answer_lead: " ",
                answer_end: "</s>",
                ..Layout::default()
            },
            TemplateName::Mistral | TemplateName::Llama2 => Layout {
                no_system: "[INST] ",
                system_open: "[INST] <<SYS>>\n",
                system_close: "\n<</SYS>>\n\n",
                user_open: "[INST] ",
                user_close: " ",
                assistant_open: "[/INST]",
                answer_lead: " ",
                answer_end: if self.name == TemplateName::Mistral {
                    "</s>"
                } else {
                    " </s>"
                },
                assistant_after: if self.name == TemplateName::Mistral {
                    ""
                } else {
                    "<s>"
                },
                ..Layout::default()
            },
            TemplateName::Llama3 => Layout {
                start: "<|begin_of_text|>",
                system_open: "<|start_header_id|>system<|end_header_id|>\n\n",
                system_close: "<|eot_id|>",
                user_first: "<|start_header_id|>user<|end_header_id|>\n\n",
                user_open: "<|start_header_id|>user<|end_header_id|>\n\n",
                user_close: "<|eot_id|>",
                assistant_open: "<|start_header_id|>assistant<|end_header_id|>\n\n",
                answer_end: "<|eot_id|>",
                trim: true,
                ..Layout::default()
            },
            TemplateName::Phi3 => Layout::tagged(
                ["<|system|>\n", "<|user|>\n", "<|assistant|>\n"],
                ["<|end|>", "<|end|>\n"],
            ),
            TemplateName::Chatml => Layout::tagged(
                [
                    "<|im_start|>system\n",
                    "<|im_start|>user\n",
                    "<|im_start|>assistant\n",
                ],
                ["<|im_end|>", "<|im_end|>\n"],
            ),
        }
    }
}

/// A template as text pieces. A conversation renders as `start`, then `system_open + system +
/// system_close` (or `no_system` when the system message is empty), then per user turn
/// `user_first` (first turn) or `user_open`, the text and `user_close`, and per assistant turn
/// `assistant_open`, the trained `answer_lead + text + answer_end`, and `assistant_after`; a
/// generation prompt ends with `assistant_open`. With `trim`, the system message and turns are
/// stripped of surrounding whitespace.
#[derive(Default)]
struct Layout {
    start: &'static str,
    no_system: &'static str,
    system_open: &'static str,
    system_close: &'static str,
    user_first: &'static str,
    user_open: &'static str,
    user_close: &'static str,
    assistant_open: &'static str,
    answer_lead: &'static str,
    answer_end: &'static str,
    assistant_after: &'static str,
    trim: bool,
}

impl Layout {
    /// A role-tag template (phi3, chatml): `{tag}{text}{end}\n` per turn (`end_line` is
    /// `end` and the newline).
    fn tagged(
        [system, user, assistant]: [&'static str; 3],
        [end, end_line]: [&'static str; 2],
    ) -> Layout {
        Layout {
            system_open: system,
            system_close: end_line,
            user_first: user,
            user_open: user,
            user_close: end_line,
            assistant_open: assistant,
            answer_end: end,
            assistant_after: "\n",
            ..Layout::default()
        }
    }
}

/// Turns must alternate user/assistant starting with the user and end with the user (inference)
/// or the assistant (training).
fn check_turns(turns: &[Turn], generation_prompt: bool) -> Result<()> {
    let bad = |why: String| Err(Error::Config(format!("invalid conversation: {why}")));
    if turns.is_empty() {
        return bad("no turns".into());
    }
    for (i, t) in turns.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        if t.role != expected {
            return bad(format!("turn {i} is {:?}, expected {expected:?}", t.role));
        }
    }
    let last = turns[turns.len() - 1].role;
    match (generation_prompt, last) {
        (true, Role::Assistant) => bad("a prompt must end with a user turn".into()),
        (false, Role::User) => {
            bad("a training conversation must end with an assistant turn".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_template_name_lists_the_choices() {
        let e = "x".parse::<TemplateName>().unwrap_err();
        assert_eq!(
            e,
            "unknown template \"x\"; expected vicuna | mistral | llama-2 | llama-3 | phi3 | chatml"
        );
        assert_eq!("llama-3".parse::<TemplateName>(), Ok(TemplateName::Llama3));
    }

    #[test]
    fn turns_must_alternate() {
        let t = ChatTemplate::new(TemplateName::Chatml);
        let e = t
            .render_training(&[Turn::user("a"), Turn::user("b")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("turn 1 is User"), "{e}");
        assert!(t.render_training(&[Turn::user("a")]).is_err());
        assert!(
            t.prompt_conversation(&[Turn::user("a"), Turn::assistant("b")])
                .is_err()
        );
    }

    #[test]
    fn trained_ranges_cover_answer_and_end_of_turn() {
        for name in TemplateName::ALL {
            let t = ChatTemplate::new(*name);
            let r = t
                .render_training(&[Turn::user("Q?"), Turn::assistant("Yes")])
                .unwrap();
            assert_eq!(r.trained.len(), 1, "{name}");
            let span = &r.text[r.trained[0].clone()];
            assert!(span.trim_start().starts_with("Yes"), "{name}: {span:?}");
            assert!(
                t.stop_strings().iter().any(|s| span.ends_with(s)),
                "{name}: {span:?}"
            );
        }
    }
}
