//! Generation behaviour: beam search against exhaustive search, batching with left padding,
//! stop/banned/min-length rules, seeded sampling, embedding additions, and the scoring call.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use recx::llm::device::Cpu;
use recx::llm::generate::prompt_embeddings;
use recx::llm::{
    Decoding, EmbeddingAddition, GenerateOptions, LlamaConfig, generate, load_model,
    next_token_logits,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

fn tokens(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// A vocab-8 model whose five best 3-token continuations were found by scoring all 512 of them
/// (scripts/llm_reference.py); greedy decoding misses the best one.
#[test]
fn beam_search_finds_the_exhaustive_best_sequences() {
    let dir = fixtures().join("beam_llama");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let (model, _) = load_model::<Cpu>(&dir, &Default::default()).unwrap();
    let prompt = tokens(&expected["prompt"]);

    let greedy = generate(
        &model,
        std::slice::from_ref(&prompt),
        &[],
        &GenerateOptions {
            max_new_tokens: 3,
            ..Default::default()
        },
    );
    assert_eq!(greedy[0][0].tokens, tokens(&expected["greedy"]));

    let opts = GenerateOptions {
        max_new_tokens: 3,
        decoding: Decoding::Beam {
            num_beams: 5,
            num_return: 5,
            length_penalty: 0.0,
        },
        ..Default::default()
    };
    let beams = generate(&model, &[prompt.clone(), prompt], &[], &opts);
    let best = expected["best"].as_array().unwrap();
    for per_prompt in &beams {
        assert_eq!(per_prompt.len(), 5);
        for (got, want) in per_prompt.iter().zip(best) {
            assert_eq!(got.tokens, tokens(&want["tokens"]));
            let want_score = want["sum_logprob"].as_f64().unwrap() as f32;
            assert!(
                (got.score - want_score).abs() < 1e-3,
                "{} vs {want_score}",
                got.score
            );
        }
    }
    assert_ne!(
        beams[0][0].tokens, greedy[0][0].tokens,
        "beam search must beat greedy here"
    );
}

#[test]
fn batched_greedy_with_left_padding_equals_one_by_one() {
    let (model, _) = load_model::<Cpu>(&fixtures().join("llama_f32"), &Default::default()).unwrap();
    let prompts = vec![vec![1, 7, 3, 12, 5, 30, 2], vec![4, 9], vec![11, 8, 20, 33]];
    let opts = GenerateOptions {
        max_new_tokens: 6,
        ..Default::default()
    };
    let batched = generate(&model, &prompts, &[], &opts);
    for (p, got) in prompts.iter().zip(&batched) {
        let alone = generate(&model, std::slice::from_ref(p), &[], &opts);
        assert_eq!(got[0].tokens, alone[0][0].tokens);
        assert!((got[0].score - alone[0][0].score).abs() < 1e-3);
    }
}

#[test]
fn stop_banned_and_min_length_rules() {
    let (model, _) = load_model::<Cpu>(&fixtures().join("llama_f32"), &Default::default()).unwrap();
    let prompt = vec![vec![1, 7, 3, 12, 5, 30, 2]];
    let free = generate(
        &model,
        &prompt,
        &[],
        &GenerateOptions {
            max_new_tokens: 6,
            ..Default::default()
        },
    );
    let first = free[0][0].tokens[0];

    // Stopping on the first token ends after one token (kept in the output).
    let stop = GenerateOptions {
        max_new_tokens: 6,
        stop_tokens: vec![first],
        ..Default::default()
    };
    assert_eq!(
        generate(&model, &prompt, &[], &stop)[0][0].tokens,
        vec![first]
    );

    // With a minimum length the stop token cannot come first.
    let min = GenerateOptions {
        min_new_tokens: 1,
        ..stop.clone()
    };
    let out = &generate(&model, &prompt, &[], &min)[0][0].tokens;
    assert_ne!(out[0], first);

    // A banned token never appears.
    let banned = GenerateOptions {
        max_new_tokens: 6,
        banned_tokens: free[0][0].tokens.clone(),
        ..Default::default()
    };
    let out = &generate(&model, &prompt, &[], &banned)[0][0].tokens;
    assert!(
        out.iter().all(|t| !free[0][0].tokens.contains(t)),
        "{out:?}"
    );
}

#[test]
fn sampling_is_reproducible_per_seed() {
    let (model, _) = load_model::<Cpu>(&fixtures().join("llama_f32"), &Default::default()).unwrap();
    let prompt = vec![vec![1, 7, 3]];
    let opts = |seed| GenerateOptions {
        max_new_tokens: 12,
        decoding: Decoding::Sample {
            temperature: 1.5,
            top_p: 0.95,
            seed,
        },
        ..Default::default()
    };
    let a = generate(&model, &prompt, &[], &opts(7));
    assert_eq!(a, generate(&model, &prompt, &[], &opts(7)));
    let others: Vec<_> = (8..12)
        .map(|s| generate(&model, &prompt, &[], &opts(s)))
        .collect();
    assert!(
        others.iter().any(|o| o != &a),
        "different seeds should give some different samples"
    );
}

/// Adding `E[y] - E[x]` onto the embedding of token x must act exactly like token y there
/// (spec §4.3's additive injection, through the generation and scoring APIs).
#[test]
fn embedding_additions_act_on_the_given_positions() {
    let (model, _) = load_model::<Cpu>(&fixtures().join("llama_f32"), &Default::default()).unwrap();
    let device = Default::default();
    let emb = |t: u32| {
        let ids =
            Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![t as i64], [1, 1]), &device);
        model.embed(ids).reshape([model.hidden_size()])
    };
    let with_x = vec![vec![1, 7, 3, 12], vec![5, 9]];
    let with_y = vec![vec![1, 7, 40, 12], vec![5, 9]];
    let add = vec![EmbeddingAddition {
        row: 0,
        pos: 2,
        vector: emb(40) - emb(3),
    }];
    let a: Vec<f32> = next_token_logits(&model, &with_x, &add)
        .into_data()
        .iter::<f32>()
        .collect();
    let b: Vec<f32> = next_token_logits(&model, &with_y, &[])
        .into_data()
        .iter::<f32>()
        .collect();
    let plain: Vec<f32> = next_token_logits(&model, &with_x, &[])
        .into_data()
        .iter::<f32>()
        .collect();
    let max_diff = |u: &[f32], v: &[f32]| {
        u.iter()
            .zip(v)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    assert!(max_diff(&a, &b) < 1e-4, "{}", max_diff(&a, &b));
    assert!(max_diff(&a, &plain) > 1e-2);
    let opts = GenerateOptions {
        max_new_tokens: 5,
        ..Default::default()
    };
    let tokens = |g: Vec<Vec<recx::llm::Generated>>| {
        g.into_iter()
            .map(|r| r[0].tokens.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tokens(generate(&model, &with_x, &add, &opts)),
        tokens(generate(&model, &with_y, &[], &opts))
    );
    let (embeds, valid) = prompt_embeddings(&model, &with_x, &add);
    assert_eq!(embeds.dims(), [2, 4, model.hidden_size()]);
    assert_eq!(valid[1], vec![false, false, true, true]);
}

/// The cached step-by-step path and one full forward pass give the same logits.
#[test]
fn kv_cache_matches_full_forward_on_a_random_model() {
    let config = LlamaConfig::new(50, 24, 40, 2, 6, 2).with_rope_theta(500.0);
    let model = config.init::<Cpu>(&Default::default(), 3);
    let ids: Vec<i64> = vec![3, 9, 27, 1, 0, 44, 12, 5];
    let full = model.forward(Tensor::from_data(
        TensorData::new(ids.clone(), [1, 8]),
        &Default::default(),
    ));
    let full: Vec<f32> = full.into_data().iter::<f32>().collect();
    let mut cache = model.new_cache(1);
    for (i, &t) in ids.iter().enumerate() {
        let x =
            Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![t], [1, 1]), &Default::default());
        let h = model.forward_embeds(model.embed(x), &[vec![true]], &mut cache);
        let step: Vec<f32> = model.logits(h).into_data().iter::<f32>().collect();
        let want = &full[i * 50..(i + 1) * 50];
        let d = step
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-4, "position {i}: {d}");
    }
}

#[test]
fn growing_the_vocabulary_keeps_old_logits() {
    let (model, config) =
        load_model::<Cpu>(&fixtures().join("llama_f32"), &Default::default()).unwrap();
    let prompt = vec![vec![1, 7, 3]];
    let before: Vec<f32> = next_token_logits(&model, &prompt, &[])
        .into_data()
        .iter::<f32>()
        .collect();
    let grown = model.resize_token_embeddings(config.vocab_size + 2, 0.02, 1);
    assert_eq!(grown.vocab_size(), config.vocab_size + 2);
    let after: Vec<f32> = next_token_logits(&grown, &prompt, &[])
        .into_data()
        .iter::<f32>()
        .collect();
    assert_eq!(after.len(), before.len() + 2);
    assert!(before.iter().zip(&after).all(|(a, b)| (a - b).abs() < 1e-5));
    // The new rows are usable as inputs.
    let new_id = config.vocab_size as u32 + 1;
    let out = next_token_logits(&grown, &[vec![1, new_id]], &[]);
    assert_eq!(out.dims(), [1, config.vocab_size + 2]);
}
