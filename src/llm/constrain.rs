//! Constrained decoding of list answers: the model may only write a list of distinct items from
//! a given set (the ranking task's candidates), joined by the separator, and stops once every
//! item is listed. Each step masks every token that cannot continue such a list; among those
//! that can, the model's own choice stands.
//!
//! Why: a small model trained from scratch learns which items a user prefers long before it
//! learns to copy titles out of its prompt, so free decoding scores its ranking answers near
//! zero whatever its preferences (it names items that are not candidates). Decoding within the
//! candidates measures the ranking it would give, as Random and Popularity (which also only
//! order the candidates) are measured. It is an evaluation setting, off by default (the paper
//! decodes freely), and reports say when it was on.
//!
//! Items are token sequences as the answer text tokenizes them: the first item alone, every
//! later one with the separator in front (`"; Title"`), so a tokenizer that merges the space
//! into the title's first piece is followed exactly. One item's tokens may be a prefix of
//! another's; the item is then complete or continues, whichever the next token says.

/// The lists a prompt may be answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct ListGrammar {
    /// Tokens of item k as the answer's first element.
    first: Vec<Vec<u32>>,
    /// Tokens of the separator followed by item k.
    later: Vec<Vec<u32>>,
    /// Tokens that end the answer once every item is listed.
    stops: Vec<u32>,
}

/// Where one answer is in its grammar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListState {
    used: Vec<bool>,
    listed: usize,
    /// Tokens of the element being written.
    prefix: Vec<u32>,
}

impl ListGrammar {
    /// `first[k]` and `later[k]` are item k's tokens without and with the separator before it.
    /// Items with no tokens are dropped.
    pub fn new(first: Vec<Vec<u32>>, later: Vec<Vec<u32>>, stops: Vec<u32>) -> ListGrammar {
        assert_eq!(first.len(), later.len(), "one separator-led form per item");
        let (first, later) = first
            .into_iter()
            .zip(later)
            .filter(|(f, l)| !f.is_empty() && !l.is_empty())
            .unzip();
        ListGrammar {
            first,
            later,
            stops,
        }
    }

    /// The state before the first token.
    pub fn start(&self) -> ListState {
        ListState {
            used: vec![false; self.first.len()],
            ..ListState::default()
        }
    }

    fn forms(&self, state: &ListState) -> &[Vec<u32>] {
        if state.listed == 0 {
            &self.first
        } else {
            &self.later
        }
    }

    /// Unused items whose current form strictly extends the element written so far.
    fn continuations<'a>(&'a self, state: &'a ListState) -> impl Iterator<Item = u32> + 'a {
        self.forms(state)
            .iter()
            .enumerate()
            .filter(move |(k, form)| {
                !state.used[*k]
                    && form.len() > state.prefix.len()
                    && form.starts_with(&state.prefix)
            })
            .map(move |(_, form)| form[state.prefix.len()])
    }

    /// The unused item whose current form the element written so far completes.
    fn completed(&self, state: &ListState) -> Option<usize> {
        if state.prefix.is_empty() {
            return None;
        }
        self.forms(state)
            .iter()
            .enumerate()
            .find(|(k, form)| !state.used[*k] && **form == state.prefix)
            .map(|(k, _)| k)
    }

    /// The state after the element written so far is closed as item `k`.
    fn closed(&self, state: &ListState, k: usize) -> ListState {
        let mut next = state.clone();
        next.used[k] = true;
        next.listed += 1;
        next.prefix.clear();
        next
    }

    /// The tokens allowed next, sorted and distinct.
    pub fn allowed(&self, state: &ListState) -> Vec<u32> {
        let mut out: Vec<u32> = self.continuations(state).collect();
        let at_boundary = match self.completed(state) {
            Some(k) => Some(self.closed(state, k)),
            None if state.prefix.is_empty() => Some(state.clone()),
            None => None,
        };
        if let Some(b) = at_boundary {
            if b.used.iter().all(|&u| u) {
                out.extend(&self.stops);
            } else if b != *state {
                out.extend(self.continuations(&b));
            }
        }
        if out.is_empty() {
            // Nothing can follow (no items at all): let the answer end.
            out.extend(&self.stops);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The state after `token`, which must be one of [`ListGrammar::allowed`].
    pub fn advance(&self, state: &ListState, token: u32) -> ListState {
        if self.continuations(state).any(|t| t == token) {
            let mut next = state.clone();
            next.prefix.push(token);
            return next;
        }
        // The token starts the next element (or stops): close the finished one first.
        let mut next = match self.completed(state) {
            Some(k) => self.closed(state, k),
            None => state.clone(),
        };
        if !self.stops.contains(&token) {
            next.prefix.push(token);
        }
        next
    }
}

/// Sets every logit outside `allowed` (sorted) to −∞.
pub fn mask_to(logits: &mut [f32], allowed: &[u32]) {
    for (t, x) in logits.iter_mut().enumerate() {
        if allowed.binary_search(&(t as u32)).is_err() {
            *x = f32::NEG_INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: u32 = 99;
    const SEP: u32 = 50;

    /// Items 1, 2 and [1, 3] (item 0's tokens are a prefix of item 2's); later forms put the
    /// separator token first.
    fn grammar() -> ListGrammar {
        let first = vec![vec![1], vec![2], vec![1, 3]];
        let later = first
            .iter()
            .map(|f| [vec![SEP], f.clone()].concat())
            .collect();
        ListGrammar::new(first, later, vec![STOP])
    }

    fn walk(g: &ListGrammar, tokens: &[u32]) -> ListState {
        let mut s = g.start();
        for &t in tokens {
            assert!(g.allowed(&s).contains(&t), "{t} not allowed after {s:?}");
            s = g.advance(&s, t);
        }
        s
    }

    #[test]
    fn a_list_names_each_item_once_then_stops() {
        let g = grammar();
        assert_eq!(g.allowed(&g.start()), [1, 2]);
        let s = walk(&g, &[2]);
        assert_eq!(g.allowed(&s), [SEP]);
        let s = walk(&g, &[2, SEP]);
        assert_eq!(g.allowed(&s), [1], "item 2 is used");
        // After "1" the element is item 0 complete, or item 2 going on.
        let s = walk(&g, &[2, SEP, 1]);
        assert_eq!(g.allowed(&s), [3, SEP]);
        let s = walk(&g, &[2, SEP, 1, SEP, 1, 3]);
        assert_eq!(g.allowed(&s), [STOP], "every item listed");
        let s = walk(&g, &[2, SEP, 1, 3, SEP]);
        assert_eq!(g.allowed(&s), [1]);
    }

    #[test]
    fn masking_keeps_only_the_allowed_tokens() {
        let mut logits = vec![0.5f32; 5];
        mask_to(&mut logits, &[1, 3]);
        assert_eq!(logits[1], 0.5);
        assert_eq!(logits[3], 0.5);
        assert!(logits[0].is_infinite() && logits[2].is_infinite() && logits[4].is_infinite());
    }

    #[test]
    fn an_empty_item_set_may_only_stop() {
        let g = ListGrammar::new(vec![vec![]], vec![vec![SEP]], vec![STOP]);
        assert_eq!(g.allowed(&g.start()), [STOP]);
    }
}
