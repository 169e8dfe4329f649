//! `up logs` queries: plain text, or field comparisons joined by `and` / `&&`, turned into a
//! CloudWatch Logs filter pattern.
//!
//! - `timeout` or `connection reset` → the quoted term `"connection reset"` (the phrase, case
//!   as written).
//! - `level = "error" and status >= 500` → `{ ($.level = "error") && ($.status >= 500) }`.
//!   Values may be quoted (`"error"`, `'error'`) or bare (`error`, `500`, `/x`); a bare number
//!   compares as a number, `true` / `false` / `null` become `IS TRUE` / `IS FALSE` / `IS NULL`,
//!   and `*` in a text value is CloudWatch's wildcard. Text compares with `=` / `!=` only.
//!
//! The same query is also evaluated on each event ([`Query::matches`]), with CloudWatch's
//! meaning, so the output is right even where the endpoint ignores the pattern.

use serde_json::Value;
use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every event.
    All,
    /// Events whose message contains this phrase.
    Text(String),
    /// JSON events satisfying every comparison.
    Fields(Vec<Comparison>),
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The field's path below the event's root, dotted: `level`, `http.status`.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The value compared with.
    pub value: Literal,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Text, possibly with `*` wildcards.
    Text(String),
    /// A number, kept as written for the pattern.
    Number(f64, String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Why a query cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad query {query:?}: {reason}")]
pub struct QueryError {
    /// The query as given.
    pub query: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// Parses a query. An empty one matches every event; one that starts with `field <op>` is a
/// field query (and must then be well formed); anything else is a phrase.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    let fail = |reason: String| QueryError {
        query: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Ok(Query::All);
    }
    if !looks_like_fields(text) {
        if text.contains('"') {
            return Err(fail(
                "a text search cannot contain a double quote (\")".into(),
            ));
        }
        return Ok(Query::Text(text.to_owned()));
    }
    let tokens = tokenize(text).map_err(fail)?;
    parse_fields(&tokens).map(Query::Fields).map_err(fail)
}

impl Query {
    /// The CloudWatch Logs filter pattern; `None` for [`Query::All`].
    pub fn filter_pattern(&self) -> Option<String> {
        match self {
            Self::All => None,
            Self::Text(phrase) => Some(format!("\"{phrase}\"")),
            Self::Fields(comparisons) => {
                let parts: Vec<String> = comparisons.iter().map(Comparison::pattern).collect();
                Some(format!("{{ {} }}", parts.join(" && ")))
            }
        }
    }

    /// Whether an event's message satisfies the query, as CloudWatch decides it: a phrase is
    /// a case-sensitive substring; field comparisons need a JSON object message.
    pub fn matches(&self, message: &str) -> bool {
        match self {
            Self::All => true,
            Self::Text(phrase) => message.contains(phrase.as_str()),
            Self::Fields(comparisons) => match serde_json::from_str::<Value>(message.trim()) {
                Ok(root @ Value::Object(_)) => comparisons.iter().all(|c| c.matches(&root)),
                _ => false,
            },
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => write!(f, "\"{text}\""),
            Self::Number(_, written) => f.write_str(written),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("null"),
        }
    }
}

impl Comparison {
    fn pattern(&self) -> String {
        let field = format!("$.{}", self.field);
        match &self.value {
            Literal::Bool(true) => format!("({field} IS TRUE)"),
            Literal::Bool(false) => format!("({field} IS FALSE)"),
            Literal::Null => format!("({field} IS NULL)"),
            value => format!("({field} {} {value})", self.op.as_str()),
        }
    }

    fn matches(&self, root: &Value) -> bool {
        let found = lookup(root, &self.field);
        match (&self.value, found) {
            (Literal::Bool(b), Some(Value::Bool(v))) => v == b,
            (Literal::Null, Some(Value::Null)) => true,
            (Literal::Bool(_) | Literal::Null, _) => false,
            (Literal::Number(want, _), Some(value)) => match number_of(value) {
                Some(have) => compare(self.op, have, *want),
                None => false,
            },
            (Literal::Text(pattern), Some(value)) => {
                let have = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return false,
                };
                let equal = glob(pattern, &have);
                if self.op == Op::Eq { equal } else { !equal }
            }
            (_, None) => false,
        }
    }
}

/// A JSON number, or a string holding one.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|n: &f64| n.is_finite()),
        _ => None,
    }
}

fn compare(op: Op, have: f64, want: f64) -> bool {
    match op {
        Op::Eq => have == want,
        Op::Ne => have != want,
        Op::Lt => have < want,
        Op::Le => have <= want,
        Op::Gt => have > want,
        Op::Ge => have >= want,
    }
}

/// `a.b.c` (segments may end with `[n]`) inside `root`.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = root;
    for segment in path.split('.') {
        let (name, indexes) = match segment.find('[') {
            Some(i) => segment.split_at(i),
            None => (segment, ""),
        };
        at = at.get(name)?;
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = index.trim_end_matches(']').parse().ok()?;
            at = at.get(n)?;
        }
    }
    Some(at)
}

/// Whole-string match where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(split) => split,
        None => return true,
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    And,
}

/// `field` (optionally `$.field`) followed by an operator.
fn looks_like_fields(text: &str) -> bool {
    let rest = text.strip_prefix("$.").unwrap_or(text);
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')))
        .unwrap_or(rest.len());
    if name_end == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return false;
    }
    let after = rest[name_end..].trim_start();
    ["==", "!=", "<=", ">=", "=", "<", ">"]
        .iter()
        .any(|op| after.starts_with(op))
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' || c == '\'' {
            chars.next();
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c2)) = chars.next() {
                match c2 {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => break,
                    },
                    q if q == c => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(format!(
                    "the quote opened at column {} is not closed",
                    at + 1
                ));
            }
            tokens.push(Token::Quoted(value));
            continue;
        }
        let rest = &text[at..];
        if rest.starts_with("&&") {
            chars.next();
            chars.next();
            tokens.push(Token::And);
            continue;
        }
        let op = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find(|(s, _)| rest.starts_with(s));
        if let Some((s, op)) = op {
            for _ in 0..s.chars().count() {
                chars.next();
            }
            tokens.push(Token::Op(op));
            continue;
        }
        if c == '!' {
            return Err(format!("unexpected '!' at column {}", at + 1));
        }
        let mut word = String::new();
        while let Some(&(_, c2)) = chars.peek() {
            if c2.is_whitespace() || matches!(c2, '=' | '!' | '<' | '>' | '"' | '\'') {
                break;
            }
            if c2 == '&' && text[at + word.len()..].starts_with("&&") {
                break;
            }
            word.push(c2);
            chars.next();
        }
        if word.eq_ignore_ascii_case("and") {
            tokens.push(Token::And);
        } else {
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

fn parse_fields(tokens: &[Token]) -> Result<Vec<Comparison>, String> {
    let mut comparisons = Vec::new();
    let mut rest = tokens;
    loop {
        let (field, op, value, tail) = match rest {
            [Token::Word(field), Token::Op(op), value, tail @ ..] => (field, *op, value, tail),
            [Token::Word(field), Token::Op(_)] => {
                return Err(format!("{field}: a value is missing after the operator"));
            }
            [Token::Word(field), ..] => {
                return Err(format!(
                    "{field}: expected an operator (=, !=, <, <=, >, >=) after the field"
                ));
            }
            _ => return Err("expected `field <op> value`".into()),
        };
        let field = field_path(field)?;
        let value = literal(value)?;
        check(&field, op, &value)?;
        comparisons.push(Comparison { field, op, value });
        match tail {
            [] => return Ok(comparisons),
            [Token::And, next @ ..] if !next.is_empty() => rest = next,
            [Token::And] => return Err("nothing follows the last `and`".into()),
            [Token::Word(w), ..] if w.eq_ignore_ascii_case("or") || w == "||" => {
                return Err("only `and` (&&) can join comparisons".into());
            }
            _ => return Err("comparisons must be joined with `and` (&&)".into()),
        }
    }
}

fn field_path(word: &str) -> Result<String, String> {
    let path = word.strip_prefix("$.").unwrap_or(word);
    let valid = !path.is_empty()
        && path.split('.').all(|segment| {
            let (name, indexes) = match segment.find('[') {
                Some(i) => segment.split_at(i),
                None => (segment, ""),
            };
            let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let indexes_ok = indexes.is_empty()
                || (indexes.starts_with('[')
                    && indexes.ends_with(']')
                    && indexes[1..indexes.len() - 1]
                        .split("][")
                        .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())));
            name_ok && indexes_ok
        });
    if valid {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "{word}: a field is letters, digits and '_', dotted for nested fields (http.status)"
        ))
    }
}

fn literal(token: &Token) -> Result<Literal, String> {
    let value = match token {
        Token::Quoted(text) => Literal::Text(text.clone()),
        Token::Word(word) => match word.as_str() {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            "null" => Literal::Null,
            _ => match word.parse::<f64>() {
                Ok(n)
                    if n.is_finite()
                        && word.starts_with(|c: char| c.is_ascii_digit() || c == '-') =>
                {
                    Literal::Number(n, word.clone())
                }
                _ => Literal::Text(word.clone()),
            },
        },
        Token::Op(op) => return Err(format!("expected a value, found `{}`", op.as_str())),
        Token::And => return Err("expected a value, found `and`".into()),
    };
    if let Literal::Text(text) = &value
        && text.contains('"')
    {
        return Err("a value cannot contain a double quote (\")".into());
    }
    Ok(value)
}

fn check(field: &str, op: Op, value: &Literal) -> Result<(), String> {
    match value {
        Literal::Text(_) if !matches!(op, Op::Eq | Op::Ne) => Err(format!(
            "{field}: text compares with = or != only; `{}` needs a number",
            op.as_str()
        )),
        Literal::Bool(_) | Literal::Null if op != Op::Eq => {
            Err(format!("{field}: true, false and null compare with = only"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(query: &str) -> Option<String> {
        parse(query).unwrap().filter_pattern()
    }

    fn error(query: &str) -> String {
        parse(query).unwrap_err().to_string()
    }

    #[test]
    fn empty_matches_everything() {
        assert_eq!(parse("").unwrap(), Query::All);
        assert_eq!(parse("   ").unwrap(), Query::All);
        assert_eq!(pattern(""), None);
        assert!(parse("").unwrap().matches("anything"));
    }

    #[test]
    fn text_becomes_one_quoted_term() {
        assert_eq!(pattern("timeout").as_deref(), Some("\"timeout\""));
        assert_eq!(
            pattern("  connection reset by peer ").as_deref(),
            Some("\"connection reset by peer\"")
        );
        // Not a field query: no operator right after the first word.
        assert_eq!(pattern("GET /x 200").as_deref(), Some("\"GET /x 200\""));
        assert_eq!(pattern("50% off").as_deref(), Some("\"50% off\""));
        assert!(error("say \"hi\"").contains("double quote"));
    }

    #[test]
    fn field_comparisons_become_a_json_pattern() {
        assert_eq!(
            pattern(r#"level = "error""#).as_deref(),
            Some(r#"{ ($.level = "error") }"#)
        );
        assert_eq!(
            pattern(r#"level = "error" and status >= 500"#).as_deref(),
            Some(r#"{ ($.level = "error") && ($.status >= 500) }"#)
        );
        assert_eq!(
            pattern(r#"level="error"&&status>=500"#).as_deref(),
            Some(r#"{ ($.level = "error") && ($.status >= 500) }"#)
        );
        assert_eq!(
            pattern(r#"path = "/x" AND status != 200 && duration_ms > 12.5"#).as_deref(),
            Some(r#"{ ($.path = "/x") && ($.status != 200) && ($.duration_ms > 12.5) }"#)
        );
    }

    #[test]
    fn bare_and_single_quoted_values() {
        // The shell drops the quotes of `up logs level = "error"`.
        assert_eq!(
            pattern("level = error").as_deref(),
            Some(r#"{ ($.level = "error") }"#)
        );
        assert_eq!(
            pattern("path == /users/*").as_deref(),
            Some(r#"{ ($.path = "/users/*") }"#)
        );
        assert_eq!(
            pattern("msg = 'app exited'").as_deref(),
            Some(r#"{ ($.msg = "app exited") }"#)
        );
        assert_eq!(
            pattern("status = 404").as_deref(),
            Some("{ ($.status = 404) }")
        );
        assert_eq!(
            pattern("$.http.status < -1").as_deref(),
            Some("{ ($.http.status < -1) }")
        );
        assert_eq!(
            pattern("items[0].id = 7").as_deref(),
            Some("{ ($.items[0].id = 7) }")
        );
        assert_eq!(
            pattern("cold = true and error = null").as_deref(),
            Some("{ ($.cold IS TRUE) && ($.error IS NULL) }")
        );
    }

    #[test]
    fn bad_field_queries_say_what_is_wrong() {
        assert!(error(r#"level > "error""#).contains("text compares with = or != only"));
        assert!(error("status >=").contains("value is missing"));
        assert!(error("level = 'error").contains("not closed"));
        assert!(error("level = error or status = 500").contains("only `and`"));
        assert!(error("level = error status = 500").contains("joined with `and`"));
        assert!(error("level = error and").contains("nothing follows"));
        assert!(error("cold != true").contains("compare with = only"));
        assert!(error(r#"msg = "say \"hi\"""#).contains("double quote"));
        assert!(error("a..b = 1").contains("a field is"));
        assert!(error("level = = error").contains("expected a value"));
    }

    #[test]
    fn matches_evaluates_like_cloudwatch() {
        let q = parse(r#"level = "error" and status >= 500"#).unwrap();
        assert!(q.matches(r#"{"level":"error","status":502,"msg":"x"}"#));
        assert!(!q.matches(r#"{"level":"error","status":404}"#));
        assert!(!q.matches(r#"{"level":"info","status":503}"#));
        assert!(!q.matches(r#"{"level":"error"}"#));
        assert!(!q.matches("START RequestId: 1 Version: 1"));

        let q = parse("path = /users/*").unwrap();
        assert!(q.matches(r#"{"path":"/users/7"}"#));
        assert!(!q.matches(r#"{"path":"/user"}"#));
        let q = parse("path != /users/*").unwrap();
        assert!(q.matches(r#"{"path":"/items"}"#));
        assert!(!q.matches(r#"{"path":"/users/7"}"#));

        let q = parse("http.status = 200 and items[1] = b").unwrap();
        assert!(q.matches(r#"{"http":{"status":200},"items":["a","b"]}"#));

        let q = parse("cold = true").unwrap();
        assert!(q.matches(r#"{"cold":true}"#));
        assert!(!q.matches(r#"{"cold":"true"}"#));

        let q = parse("json line").unwrap();
        assert!(q.matches(r#"{"msg":"json line from app"}"#));
        assert!(!q.matches(r#"{"msg":"JSON LINE"}"#));
    }

    #[test]
    fn glob_wildcards() {
        assert!(glob("a*c", "abbc"));
        assert!(glob("*", ""));
        assert!(glob("*x*", "axb"));
        assert!(!glob("a*c", "abd"));
        assert!(glob("exact", "exact"));
        assert!(!glob("a*b*c", "acb"));
    }
}
