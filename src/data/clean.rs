//! Metadata cleaning, as RecExplainer's two preprocessing scripts do it.
//!
//! Stage 1 (spec §1.2 step 6) only replaces newline+tab with a space in titles and descriptions.
//! `metadata_filter` of stage 2 (spec §1.3 step 8) strips a fixed punctuation set from the ends
//! of titles, features and descriptions and repairs brand strings. Titles are deliberately not
//! normalised otherwise (HTML entities and inner `;`/`,` survive), because the later prompt
//! parsing depends on them exactly as the original produced them.

use super::types::ItemMeta;

/// The characters `metadata_filter` strips from both ends (`' \t\n!.,;?/:'`).
pub const PUNCTUATION: &[char] = &[' ', '\t', '\n', '!', '.', ',', ';', '?', '/', ':'];

/// Stage-1 cleaning: `"\n\t"` (newline, tab) becomes one space in the title and descriptions.
pub fn clean_stage1(meta: &mut ItemMeta) {
    meta.title = meta.title.replace("\n\t", " ");
    for d in &mut meta.description {
        *d = d.replace("\n\t", " ");
    }
}

/// Stage-2 cleaning (`metadata_filter`). Returns `false` when the title is empty after
/// stripping, which the original asserts never happens.
pub fn clean_stage2(meta: &mut ItemMeta) -> bool {
    meta.title = strip(&meta.title).to_string();
    strip_list(&mut meta.features);
    strip_list(&mut meta.description);
    if let Some(brand) = &meta.brand {
        let repaired = brand.replace("\n    \n    ", " ");
        let stripped = strip(&repaired);
        meta.brand = if !stripped.is_empty() {
            Some(stripped.to_string())
        } else if brand.trim().is_empty() {
            // An empty brand carries nothing; writing `"brand": ""` would only add noise.
            None
        } else {
            // The original keeps the unrepaired string when repair leaves nothing.
            Some(brand.clone())
        };
    }
    !meta.title.is_empty()
}

fn strip(s: &str) -> &str {
    s.trim_matches(PUNCTUATION)
}

fn strip_list(list: &mut Vec<String>) {
    list.retain_mut(|s| {
        let t = strip(s);
        if t.len() != s.len() {
            *s = t.to_string();
        }
        !s.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(title: &str) -> ItemMeta {
        ItemMeta {
            raw_id: "X".into(),
            title: title.into(),
            ..ItemMeta::default()
        }
    }

    #[test]
    fn stage1_replaces_newline_tab_only() {
        let mut m = meta("Super\n\tMario\nBros\t3");
        m.description = vec!["a\n\tb".into()];
        clean_stage1(&mut m);
        assert_eq!(m.title, "Super Mario\nBros\t3");
        assert_eq!(m.description, vec!["a b"]);
    }

    #[test]
    fn stage2_strips_punctuation_at_the_ends_only() {
        let mut m = meta(" ...Halo: Reach, Legendary Edition!?\n");
        m.features = vec![" ; ".into(), "  Online play. ".into(), "".into()];
        m.description = vec!["/Great game/".into(), ":.".into()];
        assert!(clean_stage2(&mut m));
        assert_eq!(m.title, "Halo: Reach, Legendary Edition");
        assert_eq!(m.features, vec!["Online play"]);
        assert_eq!(m.description, vec!["Great game"]);
    }

    #[test]
    fn stage2_keeps_html_entities_and_inner_separators() {
        let mut m = meta("Mario &amp; Luigi; Partners in Time");
        assert!(clean_stage2(&mut m));
        assert_eq!(m.title, "Mario &amp; Luigi; Partners in Time");
    }

    #[test]
    fn stage2_reports_titles_that_vanish() {
        assert!(!clean_stage2(&mut meta(" ?!. ")));
        assert!(!clean_stage2(&mut meta("")));
    }

    #[test]
    fn stage2_repairs_brands() {
        let mut m = meta("t");
        m.brand = Some("\n    \n    Nintendo\n    \n    ".into());
        clean_stage2(&mut m);
        assert_eq!(m.brand.as_deref(), Some("Nintendo"));
        // Repair leaves nothing: the original string stays.
        m.brand = Some("...".into());
        clean_stage2(&mut m);
        assert_eq!(m.brand.as_deref(), Some("..."));
        m.brand = Some("  ".into());
        clean_stage2(&mut m);
        assert_eq!(m.brand, None);
    }
}
