//! Chat-template tests: exact renderings (spec §4.4), loss spans (§4.5) under both tokenizer
//! kinds, answer extraction (§5.1), Yes/No ids (§5.3), stop and banned ids.

mod skip_support;

mod llm_tokenizer_fixtures;

use llm_tokenizer_fixtures as fx;
use recx::llm::LlmSection;
use recx::llm::chat::{ChatTemplate, Role, TemplateName, Turn, left_pad};
use recx::llm::tokenizer::Tokenizer;

const VICUNA_SYS: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

fn t(name: TemplateName) -> ChatTemplate {
    ChatTemplate::new(name)
}

#[test]
fn single_turn_renderings_are_the_specs() {
    let (q, a) = ("Is it fun?", "Yes");
    let cases = [
        (
            TemplateName::Vicuna,
            format!("{VICUNA_SYS} USER: {q} ASSISTANT: {a}</s>"),
            format!("{VICUNA_SYS} USER: {q} ASSISTANT:"),
        ),
        (
            TemplateName::Mistral,
            format!("[INST] {q} [/INST] {a}</s>"),
            format!("[INST] {q} [/INST]"),
        ),
        (
            TemplateName::Llama2,
            format!("[INST] {q} [/INST] {a} </s><s>"),
            format!("[INST] {q} [/INST]"),
        ),
        (
            TemplateName::Llama3,
            format!(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n{a}<|eot_id|>"
            ),
            format!(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
        ),
        (
            TemplateName::Phi3,
            format!(
                "<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n{q}<|end|>\n\
                 <|assistant|>\n{a}<|end|>\n"
            ),
            format!(
                "<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\n{q}<|end|>\n\
                 <|assistant|>\n"
            ),
        ),
        (
            TemplateName::Chatml,
            format!(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                 <|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"
            ),
            format!(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                 <|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
            ),
        ),
    ];
    for (name, training, prompt) in cases {
        assert_eq!(t(name).training_text(q, a), training, "{name}");
        assert_eq!(t(name).prompt(q), prompt, "{name}");
        // The training string continues the prompt.
        assert!(training.starts_with(&prompt), "{name}");
    }
}

#[test]
fn llama3_strips_messages() {
    let text = t(TemplateName::Llama3).training_text("  q \n", "\n a  ");
    assert!(
        text.contains("\n\nq<|eot_id|>") && text.contains("\n\na<|eot_id|>"),
        "{text:?}"
    );
}

#[test]
fn multi_turn_renderings() {
    let turns = [
        Turn::user("q1"),
        Turn::assistant("a1"),
        Turn::user("q2"),
        Turn::assistant("a2"),
    ];
    let expect = [
        (
            TemplateName::Vicuna,
            format!("{VICUNA_SYS} USER: q1 ASSISTANT: a1</s>USER: q2 ASSISTANT: a2</s>"),
        ),
        (
            TemplateName::Mistral,
            "[INST] q1 [/INST] a1</s>[INST] q2 [/INST] a2</s>".to_string(),
        ),
        (
            TemplateName::Llama2,
            "[INST] q1 [/INST] a1 </s><s>[INST] q2 [/INST] a2 </s><s>".to_string(),
        ),
        (
            TemplateName::Llama3,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\na1<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\na2<|eot_id|>"
                .to_string(),
        ),
        (
            TemplateName::Phi3,
            "<|system|>\nYou are a helpful AI assistant.<|end|>\n<|user|>\nq1<|end|>\n\
             <|assistant|>\na1<|end|>\n<|user|>\nq2<|end|>\n<|assistant|>\na2<|end|>\n"
                .to_string(),
        ),
        (
            TemplateName::Chatml,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n\
             <|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\na2<|im_end|>\n"
                .to_string(),
        ),
    ];
    for (name, text) in expect {
        let r = t(name).render_training(&turns).unwrap();
        assert_eq!(r.text, text, "{name}");
        assert_eq!(r.trained.len(), 2, "{name}");
        // The multi-turn prompt continues the same way and ends with the assistant header.
        let prompt = t(name).prompt_conversation(&turns[..3]).unwrap();
        assert!(text.starts_with(&prompt), "{name}: {prompt:?}");
        assert!(
            prompt.ends_with(t(name).assistant_separator().trim_start()),
            "{name}"
        );
    }
}

#[test]
fn system_messages_can_be_replaced() {
    let chatml = t(TemplateName::Chatml).with_system("You are Qwen.");
    assert!(
        chatml
            .prompt("q")
            .starts_with("<|im_start|>system\nYou are Qwen.<|im_end|>\n")
    );
    let none = t(TemplateName::Chatml).with_system("");
    assert_eq!(
        none.prompt("q"),
        "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n"
    );
    let llama2 = t(TemplateName::Llama2).with_system("Be brief.");
    assert_eq!(
        llama2.prompt("q"),
        "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nq [/INST]"
    );
}

/// The text each template ends an assistant turn with, as the loss must cover it.
fn end_of_turn(name: TemplateName) -> &'static str {
    match name {
        TemplateName::Vicuna | TemplateName::Mistral => "</s>",
        TemplateName::Llama2 => " </s>",
        TemplateName::Llama3 => "<|eot_id|>",
        TemplateName::Phi3 => "<|end|>",
        TemplateName::Chatml => "<|im_end|>",
    }
}

/// Both fixture tokenizers with the template's markers and the placeholders added.
fn tokenizers_for(name: TemplateName) -> Vec<(&'static str, Tokenizer)> {
    let mut out = vec![("spm", fx::spm()), ("byte-level", fx::byte_level())];
    for (_, tok) in &mut out {
        tok.add_special_tokens(t(name).marker_tokens()).unwrap();
        tok.add_placeholders().unwrap();
    }
    out
}

/// Contiguous runs of trained tokens.
fn trained_runs(ids: &[u32], mask: &[bool]) -> Vec<Vec<u32>> {
    let mut runs: Vec<Vec<u32>> = Vec::new();
    let mut prev = false;
    for (&id, &m) in ids.iter().zip(mask) {
        if m {
            if !prev {
                runs.push(Vec::new());
            }
            runs.last_mut().unwrap().push(id);
        }
        prev = m;
    }
    runs
}

#[test]
fn loss_span_is_answer_plus_end_of_turn_on_every_assistant_turn() {
    let turns = [
        Turn::user("Will the user <user> enjoy <item>?"),
        Turn::assistant("Yes, the user likes racing games."),
        Turn::user("And Halo 3?"),
        Turn::assistant("No."),
    ];
    for name in TemplateName::ALL.iter().copied() {
        for (kind, tok) in tokenizers_for(name) {
            let sample = t(name).training_sample(&tok, &turns).unwrap();
            assert_eq!(sample.ids.len(), sample.loss_mask.len());
            let runs = trained_runs(&sample.ids, &sample.loss_mask);
            assert_eq!(runs.len(), 2, "{name}/{kind}");
            for (run, answer) in runs.iter().zip([&turns[1].text, &turns[3].text]) {
                let text = tok.decode(run, false).unwrap();
                let expected = format!("{answer}{}", end_of_turn(name));
                assert_eq!(text.trim_start(), expected, "{name}/{kind}");
                let eot = tok.token_to_id(end_of_turn(name).trim()).unwrap();
                assert_eq!(
                    run.last(),
                    Some(&eot),
                    "{name}/{kind}: ends with the end-of-turn id"
                );
            }
            // The prompt part, BOS included, is masked; labels say -100 there.
            assert!(!sample.loss_mask[0], "{name}/{kind}");
            let labels = sample.labels();
            assert_eq!(labels[0], -100);
            assert_eq!(
                labels.iter().filter(|&&l| l != -100).count(),
                sample.trained_ids().len()
            );
        }
    }
}

#[test]
fn training_sample_starts_with_the_prompt_tokens() {
    // What the model sees at inference is a prefix of what it was trained on.
    for name in TemplateName::ALL.iter().copied() {
        for (kind, tok) in tokenizers_for(name) {
            let prompt = t(name).prompt_ids(&tok, "Is it fun?").unwrap();
            let sample = t(name)
                .training_sample(&tok, &[Turn::user("Is it fun?"), Turn::assistant("Yes")])
                .unwrap();
            assert_eq!(&sample.ids[..prompt.len()], &prompt[..], "{name}/{kind}");
            assert!(
                !sample.loss_mask[..prompt.len()].iter().any(|&m| m),
                "{name}/{kind}"
            );
            assert!(
                sample.loss_mask[prompt.len()],
                "{name}/{kind}: first answer token"
            );
        }
    }
}

#[test]
fn llama3_keeps_the_double_bos_of_the_original() {
    let config = t(TemplateName::Llama3).bpe_train_config(300);
    let corpus = (0..50).map(|i| format!("user {i} likes games; Yes or No"));
    let tok = Tokenizer::train_bpe(corpus, &config).unwrap();
    let bos = tok.token_to_id("<|begin_of_text|>").unwrap();
    let ids = t(TemplateName::Llama3).prompt_ids(&tok, "q").unwrap();
    assert_eq!(&ids[..2], &[bos, bos]);
}

#[test]
fn yes_no_ids_are_the_first_answer_tokens() {
    let spm = fx::spm();
    for name in [
        TemplateName::Vicuna,
        TemplateName::Mistral,
        TemplateName::Llama2,
    ] {
        let (yes, no) = t(name).yes_no_ids(&spm).unwrap();
        assert_eq!(spm.id_to_token(yes).unwrap(), "▁Yes", "{name}");
        assert_eq!(spm.id_to_token(no).unwrap(), "▁No", "{name}");
    }
    let bl = fx::byte_level();
    let (yes, no) = t(TemplateName::Chatml).yes_no_ids(&bl).unwrap();
    assert_eq!(bl.id_to_token(yes).unwrap(), "Yes");
    assert_eq!(bl.id_to_token(no).unwrap(), "No");
    // Byte-level vicuna: " Yes" starts with a lone "Ġ" in this tiny vocabulary, so Yes and No
    // cannot be told apart by their first token; that is an error, not a silent 50% task.
    let e = t(TemplateName::Vicuna)
        .yes_no_ids(&bl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("both start with token"), "{e}");
}

#[test]
fn extract_answer_cuts_at_separator_and_stops() {
    let cases = [
        (
            TemplateName::Vicuna,
            "<s> SYS USER: q ASSISTANT: Yes, it fits.</s>junk",
            " Yes, it fits.",
        ),
        (
            TemplateName::Mistral,
            "<s> [INST] q [/INST] No</s></s>",
            " No",
        ),
        (
            TemplateName::Llama3,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHalo 3<|eot_id|><|end_of_text|>",
            "Halo 3",
        ),
        (
            TemplateName::Llama3,
            "...assistant<|end_header_id|>\n\nA<|end_of_text|>",
            "...assistant<|end_header_id|>\n\nA",
        ),
        (
            TemplateName::Chatml,
            "<|im_start|>assistant\nZelda<|im_end|>\n<|endoftext|>",
            "Zelda",
        ),
        (
            TemplateName::Phi3,
            "<|assistant|>\nTetris<|endoftext|>",
            "Tetris",
        ),
    ];
    for (name, decoded, answer) in cases {
        assert_eq!(t(name).extract_answer(decoded), answer, "{name}");
    }
}

/// Template and tokenizer pairs that occur in real backbones.
fn realistic(name: TemplateName, kind: &str) -> bool {
    kind == "byte-level"
        || matches!(
            name,
            TemplateName::Vicuna | TemplateName::Mistral | TemplateName::Llama2
        )
}

#[test]
fn extract_answer_after_real_decoding() {
    for name in TemplateName::ALL.iter().copied() {
        for (kind, tok) in tokenizers_for(name) {
            let prompt = t(name).prompt_ids(&tok, "Which game next?").unwrap();
            let generated = format!(" Mario Kart 8{}", t(name).stop_strings()[0]);
            let generated = tok.encode(&generated, false).unwrap();
            let only = tok.decode(&generated, false).unwrap();
            assert_eq!(
                t(name).cut_at_stops(&only).trim(),
                "Mario Kart 8",
                "{name}/{kind}"
            );
            if realistic(name, kind) {
                let all = [prompt, generated].concat();
                let decoded = tok.decode(&all, false).unwrap();
                let answer = t(name).extract_answer(&decoded);
                assert_eq!(answer.trim(), "Mario Kart 8", "{name}/{kind}");
            }
        }
    }
}

#[test]
fn stop_and_banned_ids() {
    let config = t(TemplateName::Llama3).bpe_train_config(300);
    let corpus = (0..50).map(|i| format!("user {i} likes games"));
    let mut tok = Tokenizer::train_bpe(corpus, &config).unwrap();
    let p = tok.add_placeholders().unwrap();
    let id = |s: &str| tok.token_to_id(s).unwrap();
    let llama3 = t(TemplateName::Llama3);
    assert_eq!(
        llama3.stop_token_ids(&tok),
        vec![id("<|eot_id|>"), id("<|end_of_text|>")]
    );
    let mut banned = vec![
        id("<|begin_of_text|>"),
        id("<|start_header_id|>"),
        id("<|end_header_id|>"),
        p.user,
        p.item,
    ];
    banned.sort_unstable();
    assert_eq!(llama3.banned_ids(&tok), banned);

    let mut spm = fx::spm();
    let p = spm.add_placeholders().unwrap();
    let vicuna = t(TemplateName::Vicuna);
    assert_eq!(vicuna.stop_token_ids(&spm), vec![spm.eos_id().unwrap()]);
    // pad falls back to unk (spec §4.1); eos is never banned.
    assert_eq!(spm.pad_id(), spm.unk_id());
    assert_eq!(vicuna.banned_ids(&spm), vec![0, 1, p.user, p.item]);
}

#[test]
fn sharegpt_roles() {
    assert_eq!(Role::from_sharegpt("human"), Some(Role::User));
    assert_eq!(Role::from_sharegpt("gpt"), Some(Role::Assistant));
    assert_eq!(Role::from_sharegpt("system"), None);
}

#[test]
fn spec_rejects_unknown_template_with_the_choices() {
    let e = toml::from_str::<LlmSection>("template = \"vicuna2\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "unknown template \"vicuna2\"; expected vicuna | mistral | llama-2 | llama-3 | phi3 | chatml"
        ),
        "{e}"
    );
    let s: LlmSection = toml::from_str("template = \"llama-3\"").unwrap();
    assert_eq!(s.template, TemplateName::Llama3);
}

#[test]
fn padding_for_training_and_generation() {
    let tok = fx::byte_level();
    let chatml = t(TemplateName::Chatml);
    let sample = chatml
        .training_sample(&tok, &[Turn::user("Is it fun?"), Turn::assistant("Yes")])
        .unwrap();
    let n = sample.ids.len();
    let pad = tok.pad_id().unwrap();

    let p = sample.padded(n + 3, pad).unwrap();
    assert_eq!(&p.ids[..n], &sample.ids[..]);
    assert_eq!(&p.ids[n..], &[pad; 3]);
    assert_eq!(p.attention_mask.iter().filter(|&&m| m).count(), n);
    assert_eq!(&p.loss_mask[..n], &sample.loss_mask[..]);
    assert!(!p.loss_mask[n..].iter().any(|&m| m));
    // Truncated so that the answer is gone: nothing to train on.
    let first_trained = sample.loss_mask.iter().position(|&m| m).unwrap();
    assert!(sample.padded(first_trained, pad).is_none());
    assert_eq!(
        sample.padded(first_trained + 1, pad).unwrap().ids.len(),
        first_trained + 1
    );

    let (ids, mask) = left_pad(&[vec![5, 6, 7], vec![8]], 0, 10);
    assert_eq!(ids, vec![vec![5, 6, 7], vec![0, 0, 8]]);
    assert_eq!(mask, vec![vec![true; 3], vec![false, false, true]]);
    let (ids, _) = left_pad(&[vec![5, 6, 7], vec![8]], 0, 2);
    assert_eq!(ids, vec![vec![5, 6], vec![0, 8]]);
}

#[test]
fn jinja_templates_render_like_recx_in_python() {
    let Some(python) = fx::python_with("jinja2") else {
        return;
    };
    // HF's apply_chat_template environment: trim_blocks and lstrip_blocks.
    let script = "import json, sys\n\
                  from jinja2.sandbox import ImmutableSandboxedEnvironment\n\
                  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)\n\
                  out = []\n\
                  for case in json.load(sys.stdin):\n\
                  \x20   t = env.from_string(case['template'])\n\
                  \x20   out.append(t.render(messages=case['messages'], add_generation_prompt=case['gen']))\n\
                  print(json.dumps(out))\n";
    let conversation = [
        Turn::user("Is <item> fun? It's 'quoted' \\ with\nnewline"),
        Turn::assistant(" Yes, it is. "),
        Turn::user("And Halo 3?"),
        Turn::assistant("No."),
    ];
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for name in TemplateName::ALL.iter().copied() {
        for template in [t(name), t(name).with_system("Be 'brief'.\nReally.")] {
            for bos in [None, Some("<s>")] {
                for (turns, generation) in [(&conversation[..], false), (&conversation[..3], true)]
                {
                    let messages: Vec<serde_json::Value> = turns
                        .iter()
                        .map(|turn| {
                            let role = match turn.role {
                                Role::User => "user",
                                Role::Assistant => "assistant",
                            };
                            serde_json::json!({"role": role, "content": turn.text})
                        })
                        .collect();
                    cases.push(serde_json::json!({
                        "template": template.jinja(bos),
                        "messages": messages,
                        "gen": generation,
                    }));
                    let text = if generation {
                        template.prompt_conversation(turns).unwrap()
                    } else {
                        template.render_training(turns).unwrap().text
                    };
                    let what = format!("{name} bos={bos:?} generation={generation}");
                    expected.push((what, format!("{}{text}", bos.unwrap_or(""))));
                }
            }
        }
    }
    let rendered: Vec<String> = fx::python_json(&python, script, &[], &cases);
    assert_eq!(rendered.len(), expected.len());
    for ((what, want), got) in expected.iter().zip(&rendered) {
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn transformers_apply_chat_template_gives_recx_ids() {
    let Some(python) = fx::python_with("transformers") else {
        return;
    };
    let script = "import json, sys\n\
                  from transformers import AutoTokenizer\n\
                  out = []\n\
                  for case in json.load(sys.stdin):\n\
                  \x20   tok = AutoTokenizer.from_pretrained(case['dir'])\n\
                  \x20   ids = tok.apply_chat_template(case['messages'], tokenize=True, add_generation_prompt=True)\n\
                  \x20   out.append(list(ids['input_ids'] if hasattr(ids, 'keys') else ids))\n\
                  print(json.dumps(out))\n";
    let dir = tempfile::tempdir().unwrap();
    let question = "Will the user <user> enjoy <item>? Answer Yes or No.";
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    for name in [
        TemplateName::Vicuna,
        TemplateName::Llama2,
        TemplateName::Chatml,
    ] {
        for (kind, tok) in tokenizers_for(name) {
            if !realistic(name, kind) {
                continue;
            }
            let sub = dir.path().join(format!("{name}-{kind}"));
            tok.save_pretrained(&sub, Some(&t(name).jinja_for(&tok)))
                .unwrap();
            cases.push(serde_json::json!({
                "dir": sub.to_str().unwrap(),
                "messages": [{"role": "user", "content": question}],
            }));
            expected.push((
                format!("{name}/{kind}"),
                t(name).prompt_ids(&tok, question).unwrap(),
            ));
        }
    }
    let got: Vec<Vec<u32>> = fx::python_json(&python, script, &[], &cases);
    assert_eq!(got.len(), expected.len());
    for ((what, want), got) in expected.iter().zip(&got) {
        assert_eq!(got, want, "{what}");
    }
}
