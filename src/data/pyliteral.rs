//! Python literals (`repr` of dicts, lists, strings, numbers, `True`/`False`/`None`) as JSON
//! values.
//!
//! The Steam files of Kang & McAuley were written with Python's `str(dict)`, not as JSON: single
//! quotes, `True`/`None`, and in the games file Python 2's `u'...'` prefixes. The `py_literal`
//! crate refuses string prefixes, so this is the subset those files use, parsed straight into
//! `serde_json::Value` so the readers handle them like the JSON sources. Tuples and sets become
//! arrays; dict keys must be strings or numbers (written as their text).

use serde_json::{Map, Number, Value};

/// Parses one complete literal; the error says what was expected at which byte offset.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    let v = p.value(0)?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(p.error("end of the line"));
    }
    Ok(v)
}

/// Nesting deeper than this is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        let found = self.text[self.i..].chars().next();
        match found {
            Some(c) => format!(
                "Python literal: expected {expected} at byte {}, found {c:?}",
                self.i
            ),
            None => format!(
                "Python literal: expected {expected} at byte {}, found the end",
                self.i
            ),
        }
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("Python literal: nested deeper than {MAX_DEPTH}"));
        }
        match self.peek() {
            Some(b'{') => self.dict(depth),
            Some(b'[') => self.sequence(b']', depth),
            Some(b'(') => self.sequence(b')', depth),
            Some(b'\'' | b'"') => self.string().map(Value::String),
            Some(b'u' | b'U' | b'b' | b'B')
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                self.i += 1;
                self.string().map(Value::String)
            }
            Some(b'-' | b'+' | b'.' | b'0'..=b'9') => self.number(),
            Some(b'A'..=b'Z' | b'a'..=b'z') => self.keyword(),
            _ => Err(self.error("a value")),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut map = Map::new();
        // `{}` is a dict; `{1, 2}` a set (read as an array).
        if self.eat(b'}') {
            return Ok(Value::Object(map));
        }
        let first = self.value(depth + 1)?;
        if !self.eat(b':') {
            return self.rest_of_set(first, depth);
        }
        let mut key = first;
        loop {
            let value = self.value(depth + 1)?;
            map.insert(key_text(key, self)?, value);
            if !self.eat(b',') || self.peek() == Some(b'}') {
                break;
            }
            key = self.value(depth + 1)?;
            if !self.eat(b':') {
                return Err(self.error("':'"));
            }
        }
        if !self.eat(b'}') {
            return Err(self.error("',' or '}'"));
        }
        Ok(Value::Object(map))
    }

    fn rest_of_set(&mut self, first: Value, depth: usize) -> Result<Value, String> {
        let mut items = vec![first];
        while self.eat(b',') && self.peek() != Some(b'}') {
            items.push(self.value(depth + 1)?);
        }
        if !self.eat(b'}') {
            return Err(self.error("',' or '}'"));
        }
        Ok(Value::Array(items))
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if !self.eat(b',') || self.peek() == Some(close) {
                break;
            }
        }
        if !self.eat(close) {
            return Err(self.error(&format!("',' or '{}'", close as char)));
        }
        Ok(Value::Array(items))
    }

    fn keyword(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_alphanumeric) {
            self.i += 1;
        }
        match &self.text[start..self.i] {
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            "None" => Ok(Value::Null),
            "nan" | "inf" => Ok(Value::Null),
            _ => {
                self.i = start;
                Err(self.error("a value (True, False, None, a number, a string, ...)"))
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| {
            b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'_')
        }) {
            self.i += 1;
        }
        let text = self.text[start..self.i].replace('_', "");
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.i = start;
                Err(self.error("a number"))
            }
        }
    }

    /// A quoted string (the opening quote at `self.i`); triple quotes are not used by `repr`.
    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == quote || b == b'\\' {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.text[start..self.i]);
            match self.s.get(self.i) {
                None => return Err(self.error("the closing quote")),
                Some(&b) if b == quote => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => self.escape(&mut out)?,
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        self.i += 1;
        let Some(&b) = self.s.get(self.i) else {
            return Err(self.error("an escape sequence"));
        };
        self.i += 1;
        let simple = match b {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' => Some('\r'),
            b'0' => Some('\0'),
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'v' => Some('\x0b'),
            b'\n' => return Ok(()),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        let digits = match b {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => {
                // Python keeps an unknown escape as written.
                out.push('\\');
                self.i -= 1;
                return Ok(());
            }
        };
        let hex = self
            .text
            .get(self.i..self.i + digits)
            .ok_or_else(|| self.error("hex digits"))?;
        let code = u32::from_str_radix(hex, 16).map_err(|_| self.error("hex digits"))?;
        self.i += digits;
        // A lone surrogate (Python allows it) has no UTF-8 form: keep the replacement character.
        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        Ok(())
    }
}

fn key_text(key: Value, p: &Parser<'_>) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if b { "True" } else { "False" }.into()),
        _ => Err(p.error("a string or number as dict key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_steam_review_line() {
        let line = r#"{'username': 'Chaos Syren', 'hours': 0.1, 'products': 41, 'product_id': '725280', 'page_order': 0, 'date': '2017-12-17', 'text': 'It\'s "fine"\nreally', 'early_access': False, 'page': 1, 'compensation': None}"#;
        assert_eq!(
            parse(line).unwrap(),
            json!({"username": "Chaos Syren", "hours": 0.1, "products": 41,
                   "product_id": "725280", "page_order": 0, "date": "2017-12-17",
                   "text": "It's \"fine\"\nreally", "early_access": false, "page": 1,
                   "compensation": null})
        );
    }

    #[test]
    fn reads_python2_unicode_prefixes_and_escapes() {
        let line = r#"{u'app_name': u'Pok\xe9mon \u2122', u'genres': [u'Action', u"Indie"], u'price': 4.99, u'id': u'761140', 'n': -3, 't': (1, 2,)}"#;
        assert_eq!(
            parse(line).unwrap(),
            json!({"app_name": "Pokémon ™", "genres": ["Action", "Indie"], "price": 4.99,
                   "id": "761140", "n": -3, "t": [1, 2]})
        );
    }

    #[test]
    fn empty_containers_and_sets() {
        assert_eq!(parse("{}").unwrap(), json!({}));
        assert_eq!(parse("[ ]").unwrap(), json!([]));
        assert_eq!(parse("{1, 2}").unwrap(), json!([1, 2]));
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = parse("{'a': 1, 'b' 2}").unwrap_err();
        assert!(err.contains("expected ':' at byte 13"), "{err}");
        let err = parse("{'a': 'open").unwrap_err();
        assert!(err.contains("closing quote"), "{err}");
        let err = parse("{'a': nope}").unwrap_err();
        assert!(err.contains("expected a value"), "{err}");
        assert!(
            parse("{'a': 1} trailing")
                .unwrap_err()
                .contains("end of the line")
        );
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).unwrap_err().contains("nested deeper"));
    }
}
