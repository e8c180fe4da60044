//! Text generation over the decoder: batched greedy decoding, seeded temperature/top-p
//! sampling, beam search, and the next-token scoring call.
//!
//! Prompts are left-padded into one batch (spec §4.1: inference pads on the left) and run
//! through the model once; each further step feeds one token per live row and reuses the
//! [`KvCache`]. Rows that finish are dropped from the batch (the cache is reordered), so a batch
//! costs what its live rows cost. Token choice happens on the host over the last position's
//! logits: that is one `[rows, vocab]` read per step, small next to the forward pass.
//!
//! Prompt embeddings may carry additions at given positions (connector outputs added onto the
//! `<user>`/`<item>` rows, spec §4.3); generated tokens use plain embeddings.

use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};
use rand::Rng;
use rand::SeedableRng;

use super::constrain::{ListGrammar, ListState, mask_to};
use super::model::{KvCache, LlamaModel};

/// A vector added onto the input embedding of prompt `row` at token position `pos` (a position
/// in that prompt's own token list, before padding).
#[derive(Debug, Clone)]
pub struct EmbeddingAddition<B: Backend> {
    pub row: usize,
    pub pos: usize,
    /// `[hidden]`
    pub vector: Tensor<B, 1>,
}

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoding {
    Greedy,
    /// Softmax at `temperature`, restricted to the smallest set of tokens whose probability
    /// reaches `top_p`, drawn with a ChaCha generator seeded by `seed`.
    Sample {
        temperature: f32,
        top_p: f32,
        seed: u64,
    },
    /// Beam search (HF semantics: hypotheses ranked by summed log-probability divided by
    /// generated length ^ `length_penalty`); returns `num_return` sequences per prompt.
    Beam {
        num_beams: usize,
        num_return: usize,
        length_penalty: f32,
    },
}

/// Generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// Stop tokens are banned until this many tokens were generated.
    pub min_new_tokens: usize,
    /// Generation of a row ends after it emits one of these (the token is kept in the output).
    pub stop_tokens: Vec<u32>,
    /// Never generated (placeholders, pad, bos).
    pub banned_tokens: Vec<u32>,
    pub decoding: Decoding,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            min_new_tokens: 0,
            stop_tokens: Vec::new(),
            banned_tokens: Vec::new(),
            decoding: Decoding::Greedy,
        }
    }
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// New tokens only (the stop token included when one ended the sequence).
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log-probabilities (beam search: divided by length^penalty).
    pub score: f32,
}

/// Left-pads prompts to one length: ids `[B, L]` (pad id 0) and the validity of each position.
fn left_pad(prompts: &[Vec<u32>]) -> (Vec<i64>, Vec<Vec<bool>>, usize) {
    let len = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(prompts.len() * len);
    let mut valid = Vec::with_capacity(prompts.len());
    for p in prompts {
        let pad = len - p.len();
        ids.extend(std::iter::repeat_n(0, pad).chain(p.iter().map(|&t| t as i64)));
        valid.push((0..len).map(|i| i >= pad).collect());
    }
    (ids, valid, len)
}

/// Input embeddings of a left-padded prompt batch with the additions applied:
/// returns `[B, L, hidden]` and the validity mask.
pub fn prompt_embeddings<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
) -> (Tensor<B, 3>, Vec<Vec<bool>>) {
    assert!(
        prompts.iter().all(|p| !p.is_empty()),
        "every prompt needs at least one token"
    );
    let device = model.device();
    let (ids, valid, len) = left_pad(prompts);
    let b = prompts.len();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), &device);
    let embeds = model.embed(ids); // [B, L, H]
    if additions.is_empty() {
        return (embeds, valid);
    }
    let h = model.hidden_size();
    let flat: Vec<i64> = additions
        .iter()
        .map(|a| {
            let p = &prompts[a.row];
            assert!(
                a.pos < p.len(),
                "addition at position {} of a {}-token prompt",
                a.pos,
                p.len()
            );
            (a.row * len + (len - p.len()) + a.pos) as i64
        })
        .collect();
    let n = flat.len();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [n]), &device);
    let values = Tensor::stack::<2>(additions.iter().map(|a| a.vector.clone()).collect(), 0); // [n, H]
    let embeds = embeds
        .reshape([b * len, h])
        .select_assign(0, idx, values, IndexingUpdateOp::Add);
    (embeds.reshape([b, len, h]), valid)
}

/// Next-token logits at the last prompt position: `[B, vocab]` (for Yes/No scoring).
pub fn next_token_logits<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
) -> Tensor<B, 2> {
    let mut cache = model.new_cache(prompts.len());
    prefill(model, prompts, additions, &mut cache)
}

/// Runs the prompts and returns the last position's logits `[B, vocab]`.
fn prefill<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    cache: &mut KvCache<B>,
) -> Tensor<B, 2> {
    let (embeds, valid) = prompt_embeddings(model, prompts, additions);
    let hidden = model.forward_embeds(embeds, &valid, cache); // [B, L, H]
    let [b, l, h] = hidden.dims();
    let last = hidden.narrow(1, l - 1, 1); // [B, 1, H]
    let logits = model.logits(last); // [B, 1, V]
    let v = logits.dims()[2];
    debug_assert_eq!(h, model.hidden_size());
    logits.reshape([b, v])
}

/// Feeds one token per row and returns the logits `[B, vocab]`.
fn step<B: Backend>(model: &LlamaModel<B>, tokens: &[u32], cache: &mut KvCache<B>) -> Tensor<B, 2> {
    let b = tokens.len();
    let ids = tokens.iter().map(|&t| t as i64).collect::<Vec<_>>();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, 1]), &model.device());
    let hidden = model.forward_embeds(model.embed(ids), &vec![vec![true]; b], cache);
    let logits = model.logits(hidden);
    let v = logits.dims()[2];
    logits.reshape([b, v])
}

fn host_rows<B: Backend>(logits: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, v] = logits.dims();
    let flat: Vec<f32> = logits.into_data().iter::<f32>().collect();
    flat.chunks_exact(v).map(<[f32]>::to_vec).collect()
}

/// Applies banned tokens and the min-length rule in place.
fn constrain(logits: &mut [f32], opts: &GenerateOptions, generated: usize) {
    for &t in &opts.banned_tokens {
        if let Some(x) = logits.get_mut(t as usize) {
            *x = f32::NEG_INFINITY;
        }
    }
    if generated < opts.min_new_tokens {
        for &t in &opts.stop_tokens {
            if let Some(x) = logits.get_mut(t as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
    }
}

/// `log_softmax` of one row.
fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&x| x - lse).collect()
}

fn argmax(xs: &[f32]) -> usize {
    // First maximum, like torch.argmax.
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// Draws from softmax(logits / temperature) restricted to the top-p nucleus.
fn sample_top_p(logits: &[f32], temperature: f32, top_p: f32, rng: &mut impl Rng) -> usize {
    if temperature <= 0.0 {
        return argmax(logits);
    }
    let scaled: Vec<f32> = logits.iter().map(|&x| x / temperature).collect();
    let probs: Vec<f32> = log_softmax(&scaled).into_iter().map(f32::exp).collect();
    let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut kept = 0.0;
    let mut cut = order.len();
    for (n, &i) in order.iter().enumerate() {
        kept += probs[i];
        if kept >= top_p {
            cut = n + 1;
            break;
        }
    }
    let order = &order[..cut.max(1)];
    let total: f32 = order.iter().map(|&i| probs[i]).sum();
    let mut u = rng.random::<f32>() * total;
    for &i in order {
        u -= probs[i];
        if u <= 0.0 {
            return i;
        }
    }
    *order.last().expect("nucleus is never empty")
}

/// Generates continuations for every prompt. Greedy and sampling return one [`Generated`] per
/// prompt; beam search returns `num_return` per prompt, best first.
pub fn generate<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    opts: &GenerateOptions,
) -> Vec<Vec<Generated>> {
    if prompts.is_empty() {
        return Vec::new();
    }
    match opts.decoding {
        Decoding::Beam {
            num_beams,
            num_return,
            length_penalty,
        } => beam_search(
            model,
            prompts,
            additions,
            opts,
            num_beams,
            num_return.min(num_beams),
            length_penalty,
        ),
        _ => sample_or_greedy(model, prompts, additions, opts, None, &mut |_, _| true),
    }
}

/// Greedy or sampled generation in which prompt i's answer must be a list of
/// `grammars[i]` ([`ListGrammar`]): the model's choice among the tokens that continue one.
pub fn generate_lists<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    opts: &GenerateOptions,
    grammars: &[ListGrammar],
) -> Vec<Generated> {
    assert!(
        !matches!(opts.decoding, Decoding::Beam { .. }),
        "list answers are decoded greedily or sampled"
    );
    assert_eq!(grammars.len(), prompts.len(), "one grammar per prompt");
    if prompts.is_empty() {
        return Vec::new();
    }
    sample_or_greedy(
        model,
        prompts,
        additions,
        opts,
        Some(grammars),
        &mut |_, _| true,
    )
    .into_iter()
    .flatten()
    .collect()
}

/// Greedy or sampled generation (beam search has no running answer to stream) that hands each
/// chosen token to `on_token(prompt index, token)` as soon as it is chosen; generation stops
/// early when `on_token` returns `false` (e.g. a streaming client went away). The result is
/// what [`generate`] returns for the same inputs, cut where it stopped.
pub fn generate_streaming<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    opts: &GenerateOptions,
    on_token: &mut dyn FnMut(usize, u32) -> bool,
) -> Vec<Vec<Generated>> {
    assert!(
        !matches!(opts.decoding, Decoding::Beam { .. }),
        "beam search cannot stream"
    );
    if prompts.is_empty() {
        return Vec::new();
    }
    sample_or_greedy(model, prompts, additions, opts, None, on_token)
}

fn sample_or_greedy<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    opts: &GenerateOptions,
    grammars: Option<&[ListGrammar]>,
    on_token: &mut dyn FnMut(usize, u32) -> bool,
) -> Vec<Vec<Generated>> {
    let mut states: Vec<ListState> = grammars
        .map(|g| g.iter().map(ListGrammar::start).collect())
        .unwrap_or_default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(match opts.decoding {
        Decoding::Sample { seed, .. } => seed,
        _ => 0,
    });
    let mut out: Vec<Generated> = vec![
        Generated {
            tokens: Vec::new(),
            score: 0.0
        };
        prompts.len()
    ];
    if opts.max_new_tokens == 0 {
        return out.into_iter().map(|g| vec![g]).collect();
    }
    let mut cache = model.new_cache(prompts.len());
    let mut logits = host_rows(prefill(model, prompts, additions, &mut cache));
    // `live[i]` = the prompt index of batch row i.
    let mut live: Vec<usize> = (0..prompts.len()).collect();
    let mut go_on = true;
    for generated in 0..opts.max_new_tokens {
        let mut next = Vec::with_capacity(live.len());
        let mut keep = Vec::with_capacity(live.len());
        for (row, &prompt) in live.iter().enumerate() {
            let l = &mut logits[row];
            constrain(l, opts, generated);
            if let Some(g) = grammars {
                mask_to(l, &g[prompt].allowed(&states[prompt]));
            }
            let token = match opts.decoding {
                Decoding::Sample {
                    temperature, top_p, ..
                } => sample_top_p(l, temperature, top_p, &mut rng),
                _ => argmax(l),
            };
            out[prompt].score += log_softmax(l)[token];
            out[prompt].tokens.push(token as u32);
            if let Some(g) = grammars {
                states[prompt] = g[prompt].advance(&states[prompt], token as u32);
            }
            go_on &= on_token(prompt, token as u32);
            if !opts.stop_tokens.contains(&(token as u32)) {
                keep.push(row);
                next.push(token as u32);
            }
        }
        if !go_on || next.is_empty() || generated + 1 == opts.max_new_tokens {
            break;
        }
        if keep.len() < live.len() {
            cache.reorder(&keep);
            live = keep.iter().map(|&r| live[r]).collect();
        }
        logits = host_rows(step(model, &next, &mut cache));
    }
    out.into_iter().map(|g| vec![g]).collect()
}

/// Finished hypotheses of one prompt, best first, at most `capacity`.
struct Hypotheses {
    capacity: usize,
    length_penalty: f32,
    done: Vec<Generated>,
}

impl Hypotheses {
    fn add(&mut self, tokens: Vec<u32>, sum_logprobs: f32) {
        let score = sum_logprobs / (tokens.len().max(1) as f32).powf(self.length_penalty);
        self.done.push(Generated { tokens, score });
        self.done.sort_by(|a, b| b.score.total_cmp(&a.score));
        self.done.truncate(self.capacity);
    }

    fn worst(&self) -> f32 {
        self.done.last().map_or(f32::NEG_INFINITY, |g| g.score)
    }

    /// HF's `is_done` with `early_stopping = False`: no running beam can still beat the worst
    /// finished one.
    fn is_done(&self, best_running: f32, generated: usize) -> bool {
        self.done.len() >= self.capacity
            && best_running / (generated.max(1) as f32).powf(self.length_penalty) <= self.worst()
    }
}

struct Beam {
    tokens: Vec<u32>,
    score: f32,
}

#[allow(clippy::too_many_arguments)]
fn beam_search<B: Backend>(
    model: &LlamaModel<B>,
    prompts: &[Vec<u32>],
    additions: &[EmbeddingAddition<B>],
    opts: &GenerateOptions,
    num_beams: usize,
    num_return: usize,
    length_penalty: f32,
) -> Vec<Vec<Generated>> {
    let num_beams = num_beams.max(1);
    let n = prompts.len();
    let mut hyps: Vec<Hypotheses> = (0..n)
        .map(|_| Hypotheses {
            capacity: num_beams,
            length_penalty,
            done: Vec::new(),
        })
        .collect();
    if opts.max_new_tokens == 0 {
        return vec![Vec::new(); n];
    }
    let mut cache = model.new_cache(n);
    let first = host_rows(prefill(model, prompts, additions, &mut cache));
    // Every prompt starts with a single live beam; its row is reused for all beams' first step.
    let mut beams: Vec<Vec<Beam>> = (0..n)
        .map(|_| {
            vec![Beam {
                tokens: Vec::new(),
                score: 0.0,
            }]
        })
        .collect();
    let mut logits: Vec<Vec<Vec<f32>>> = first.into_iter().map(|l| vec![l]).collect();
    let mut finished = vec![false; n];
    for generated in 0..opts.max_new_tokens {
        let mut rows = Vec::new(); // cache row (in the current layout) of each surviving beam
        let mut next_tokens = Vec::new();
        let mut row_base = 0;
        for p in 0..n {
            if finished[p] {
                continue;
            }
            // Candidates over (beam, token), best first: 2·num_beams of them as in HF.
            let mut cand: Vec<(f32, usize, usize)> = Vec::new();
            for (bi, beam) in beams[p].iter().enumerate() {
                let l = &mut logits[p][bi];
                constrain(l, opts, generated);
                let lp = log_softmax(l);
                let mut top: Vec<usize> = (0..lp.len()).collect();
                let k = (2 * num_beams).min(top.len());
                top.select_nth_unstable_by(k - 1, |&a, &b| lp[b].total_cmp(&lp[a]).then(a.cmp(&b)));
                cand.extend(top[..k].iter().map(|&t| (beam.score + lp[t], bi, t)));
            }
            cand.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut next = Vec::new();
            let mut next_rows = Vec::new();
            for (rank, &(score, bi, t)) in cand.iter().enumerate() {
                if score == f32::NEG_INFINITY || next.len() == num_beams {
                    break;
                }
                let mut tokens = beams[p][bi].tokens.clone();
                tokens.push(t as u32);
                if opts.stop_tokens.contains(&(t as u32)) {
                    if rank < num_beams {
                        hyps[p].add(tokens, score);
                    }
                } else {
                    next_rows.push(row_base + bi);
                    next.push(Beam { tokens, score });
                }
            }
            row_base += beams[p].len();
            let best_running = next.first().map_or(f32::NEG_INFINITY, |b| b.score);
            let last_step = generated + 1 == opts.max_new_tokens;
            if next.is_empty() || last_step || hyps[p].is_done(best_running, generated + 1) {
                for b in next.drain(..) {
                    hyps[p].add(b.tokens, b.score);
                }
                finished[p] = true;
            } else {
                rows.extend(next_rows);
                next_tokens.extend(
                    next.iter()
                        .map(|b| *b.tokens.last().expect("one token pushed")),
                );
            }
            beams[p] = next;
        }
        if next_tokens.is_empty() {
            break;
        }
        cache.reorder(&rows);
        let mut flat = host_rows(step(model, &next_tokens, &mut cache)).into_iter();
        for p in 0..n {
            logits[p] = beams[p]
                .iter()
                .map(|_| flat.next().expect("one row per beam"))
                .collect();
        }
    }
    hyps.into_iter()
        .map(|h| h.done.into_iter().take(num_return).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_p_keeps_the_nucleus() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        // p = softmax([3, 0, -10]) ≈ [0.95, 0.05, 0]; top_p 0.5 keeps only token 0.
        for _ in 0..50 {
            assert_eq!(sample_top_p(&[3.0, 0.0, -10.0], 1.0, 0.5, &mut rng), 0);
        }
        let draws: Vec<usize> = (0..200)
            .map(|_| sample_top_p(&[0.0, 0.0, -50.0], 1.0, 1.0, &mut rng))
            .collect();
        assert!(draws.contains(&0) && draws.contains(&1) && !draws.contains(&2));
    }

    #[test]
    fn left_padding_aligns_prompts_right() {
        let (ids, valid, len) = left_pad(&[vec![5, 6, 7], vec![9]]);
        assert_eq!(len, 3);
        assert_eq!(ids, vec![5, 6, 7, 0, 0, 9]);
        assert_eq!(valid[1], vec![false, false, true]);
    }

    #[test]
    fn min_length_bans_stop_tokens() {
        let opts = GenerateOptions {
            min_new_tokens: 2,
            stop_tokens: vec![1],
            banned_tokens: vec![2],
            ..Default::default()
        };
        let mut l = vec![0.0, 5.0, 9.0];
        constrain(&mut l, &opts, 1);
        assert_eq!(argmax(&l), 0);
        let mut l = vec![0.0, 5.0, 9.0];
        constrain(&mut l, &opts, 2);
        assert_eq!(argmax(&l), 1);
    }
}
