//! The Steam data of Kang & McAuley (SASRec, ICDM 2018), the paper's third dataset.
//!
//! Two files, both one Python `repr` dict per line (see [`super::pyliteral`]):
//! - reviews (`steam_reviews.json.gz`): `username`, `product_id`, `date` (`YYYY-MM-DD`), ...;
//!   one interaction per review, users keyed by `username` as in SASRec's preprocessing;
//! - games (`steam_games.json.gz`): `id`, `app_name` / `title`, `developer`, `genres`, `tags`,
//!   `specs`. The title is `app_name` (else `title`); `developer` fills the brand, `genres` the
//!   categories, `tags` and `specs` the features. Games without an `id` cannot be reviewed
//!   and are passed over.
//!
//! Reviews of the same day keep their file order (stage 1 sorts stably by time).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lines::{self, OnBadLine, Skipped};
use super::pyliteral;
use super::raw::{LogBuilder, RawLog};
use super::types::ItemMeta;
use crate::error::Result;
use crate::spec::{Validate, Validator};

/// `[data.steam]`: file names inside `data.path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SteamSettings {
    pub reviews: String,
    pub games: String,
}

impl Default for SteamSettings {
    fn default() -> Self {
        SteamSettings {
            reviews: "steam_reviews.json.gz".into(),
            games: "steam_games.json.gz".into(),
        }
    }
}

impl Validate for SteamSettings {
    fn validate(&self, v: &mut Validator) {
        v.check(!self.reviews.is_empty(), "reviews", || {
            "needs a file name".into()
        });
        v.check(!self.games.is_empty(), "games", || {
            "needs a file name".into()
        });
    }
}

/// Reads the games file, then the reviews file.
pub fn read_steam(
    games: &Path,
    reviews: &Path,
    policy: OnBadLine,
    skipped: &mut Skipped,
) -> Result<RawLog> {
    lines::require(reviews, "data.steam.reviews")?;
    let mut log = LogBuilder::default();
    lines::for_each_line(games, "data.steam.games", policy, skipped, |_, text| {
        if let Some(meta) = game_meta(&dict(text)?)? {
            log.set_meta(meta);
        }
        Ok(())
    })?;
    lines::for_each_line(reviews, "data.steam.reviews", policy, skipped, |_, text| {
        let review = dict(text)?;
        let user = text_field(&review, "username")?;
        let item = text_field(&review, "product_id")?;
        let time = day_seconds(text_field(&review, "date")?)?;
        let (u, i) = (log.user(user), log.item(item));
        log.push(u, i, time);
        Ok(())
    })?;
    Ok(log.finish())
}

fn dict(text: &str) -> std::result::Result<serde_json::Map<String, Value>, String> {
    match pyliteral::parse(text)? {
        Value::Object(map) => Ok(map),
        _ => Err("expected a dict".into()),
    }
}

/// A required non-empty string field (numbers are accepted as their text).
fn text_field<'a>(
    map: &'a serde_json::Map<String, Value>,
    key: &str,
) -> std::result::Result<&'a str, String> {
    match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(_) => Err(format!("field {key:?} must be a non-empty string")),
        None => Err(format!("missing field {key:?}")),
    }
}

fn game_meta(
    map: &serde_json::Map<String, Value>,
) -> std::result::Result<Option<ItemMeta>, String> {
    let id = match map.get("id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("field \"id\" must be a string".into()),
    };
    let string = |k: &str| map.get(k).and_then(Value::as_str).map(str::trim);
    let title = string("app_name")
        .filter(|t| !t.is_empty())
        .or(string("title"))
        .unwrap_or("")
        .to_string();
    let list = |k: &str| -> Vec<String> {
        map.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut features = list("tags");
    features.extend(list("specs"));
    Ok(Some(ItemMeta {
        raw_id: id,
        title,
        brand: string("developer")
            .filter(|b| !b.is_empty())
            .map(str::to_string),
        features,
        description: Vec::new(),
        categories: list("genres"),
    }))
}

/// `YYYY-MM-DD` as seconds since the epoch (midnight UTC).
fn day_seconds(date: &str) -> std::result::Result<f64, String> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| format!("date {date:?} is not YYYY-MM-DD: {e}"))?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_lines_become_metadata() {
        let line = r#"{u'publisher': u'Kotoshiro', u'genres': [u'Action', u'Indie'], u'app_name': u'Lost Summoner Kitty', u'title': u'Lost Summoner Kitty', u'tags': [u'Strategy'], u'specs': [u'Single-player'], u'price': 4.99, u'early_access': False, u'id': u'761140', u'developer': u'Kotoshiro'}"#;
        let meta = game_meta(&dict(line).unwrap()).unwrap().unwrap();
        assert_eq!(meta.raw_id, "761140");
        assert_eq!(meta.title, "Lost Summoner Kitty");
        assert_eq!(meta.brand.as_deref(), Some("Kotoshiro"));
        assert_eq!(meta.categories, ["Action", "Indie"]);
        assert_eq!(meta.features, ["Strategy", "Single-player"]);
        let no_id = r#"{u'app_name': u'Orphan', u'genres': []}"#;
        assert_eq!(game_meta(&dict(no_id).unwrap()).unwrap(), None);
    }

    #[test]
    fn dates_are_days() {
        assert_eq!(day_seconds("1970-01-02").unwrap(), 86_400.0);
        assert!(
            day_seconds("17 Dec 2017")
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
    }
}
