//! Path patterns for `up.json` rules, and the normalised path they are matched against.
//!
//! A pattern is a path with two kinds of wildcard, as in apex/up:
//! - `:name` matches one non-empty path segment (`/users/:id` matches `/users/42`);
//! - `*` matches any run of characters, `/` included (`/docs/*` matches `/docs/a/b`, `/*.css`
//!   matches `/css/site.css`); its match is available as `splat`.
//!
//! Rules that protect something (auth's `public` paths, throttle's `exempt` paths) match the
//! [normalised](normalise) path: percent-escapes decoded, `//` collapsed, `.` and `..` segments
//! resolved. A path that needed normalising for dots or slashes (`/public/..%2fadmin`,
//! `/public//../admin`, `/%2e%2e/admin`) is reported as not canonical, and such a path is never
//! treated as public: the app might resolve it differently than we do.

use percent_encoding::percent_decode_str;
use std::fmt;

/// A compiled path pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Param(String),
    Splat,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Pattern {
    /// Compiles `source`. Fails when it does not start with `/` or has an unnamed `:`.
    pub fn parse(source: &str) -> Result<Self, String> {
        if !source.starts_with('/') {
            return Err(format!("path pattern {source:?} must start with \"/\""));
        }
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    if tokens.last() != Some(&Token::Splat) {
                        tokens.push(Token::Splat);
                    }
                }
                ':' if literal.ends_with('/') || (literal.is_empty() && tokens.is_empty()) => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if n.is_ascii_alphanumeric() || n == '_' {
                            name.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if name.is_empty() {
                        return Err(format!(
                            "path pattern {source:?} has a \":\" without a name"
                        ));
                    }
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    tokens.push(Token::Param(name));
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        tokens.retain(|t| !matches!(t, Token::Literal(l) if l.is_empty()));
        Ok(Self {
            source: source.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        self.captures(path).is_some()
    }

    /// The values of `:name` placeholders and of `*` (as `splat`) when `path` matches.
    pub fn captures(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut captures = Vec::new();
        match_tokens(&self.tokens, path, &mut captures).then_some(captures)
    }
}

fn match_tokens(tokens: &[Token], path: &str, captures: &mut Vec<(String, String)>) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return path.is_empty();
    };
    match first {
        Token::Literal(literal) => path
            .strip_prefix(literal.as_str())
            .is_some_and(|tail| match_tokens(rest, tail, captures)),
        Token::Param(name) => {
            let end = path.find('/').unwrap_or(path.len());
            // A segment, or a prefix of it when a literal follows within the segment.
            for cut in (1..=end).rev() {
                if !path.is_char_boundary(cut) {
                    continue;
                }
                let mark = captures.len();
                captures.push((name.clone(), path[..cut].to_owned()));
                if match_tokens(rest, &path[cut..], captures) {
                    return true;
                }
                captures.truncate(mark);
            }
            false
        }
        Token::Splat => {
            // Longest match first, so `/*` captures the whole rest.
            for cut in (0..=path.len()).rev() {
                if !path.is_char_boundary(cut) {
                    continue;
                }
                let mark = captures.len();
                captures.push(("splat".to_owned(), path[..cut].to_owned()));
                if match_tokens(rest, &path[cut..], captures) {
                    return true;
                }
                captures.truncate(mark);
            }
            false
        }
    }
}

/// A list of patterns; matches when any does.
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    /// Compiles every pattern in `sources`; the error names the first bad one.
    pub fn parse<'a>(sources: impl IntoIterator<Item = &'a String>) -> Result<Self, String> {
        sources
            .into_iter()
            .map(|s| Pattern::parse(s))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether any pattern matches `path`.
    pub fn matches(&self, path: &str) -> bool {
        self.0.iter().any(|p| p.matches(path))
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request path as rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// Decoded, `//` collapsed, `.`/`..` resolved; always starts with `/`.
    pub path: String,
    /// False when dots or slashes needed fixing (`..`, `.`, `//`, `%2e`, `%2f`, `%5c`, `\`).
    pub canonical: bool,
}

/// Normalises a request path (no query) for matching.
pub fn normalise(raw: &str) -> Normalised {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let lower = raw.to_ascii_lowercase();
    let mut canonical = !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !decoded.contains('\\');
    let mut segments: Vec<&str> = Vec::new();
    let body = decoded.strip_prefix('/').unwrap_or_else(|| {
        canonical = false;
        &decoded
    });
    for (i, segment) in body.split('/').enumerate() {
        match segment {
            "" if i + 1 < body.split('/').count() => canonical = false,
            "" => {}
            "." => canonical = false,
            ".." => {
                canonical = false;
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for s in &segments {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || (decoded.ends_with('/') && !segments.is_empty()) {
        path.push('/');
    }
    Normalised { path, canonical }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(pattern).unwrap().captures(path)
    }

    #[test]
    fn literals_params_and_splats() {
        assert!(Pattern::parse("/health").unwrap().matches("/health"));
        assert!(!Pattern::parse("/health").unwrap().matches("/healthz"));
        assert_eq!(
            caps("/users/:id", "/users/42"),
            Some(vec![("id".into(), "42".into())])
        );
        assert_eq!(caps("/users/:id", "/users/"), None);
        assert_eq!(caps("/users/:id", "/users/42/x"), None);
        assert_eq!(
            caps("/docs/*", "/docs/a/b.html"),
            Some(vec![("splat".into(), "a/b.html".into())])
        );
        assert!(Pattern::parse("/*.css").unwrap().matches("/css/site.css"));
        assert!(!Pattern::parse("/*.css").unwrap().matches("/css/site.js"));
        assert!(Pattern::parse("/*").unwrap().matches("/"));
        assert_eq!(
            caps("/blog/:year/:slug.html", "/blog/2024/hello.html"),
            Some(vec![
                ("year".into(), "2024".into()),
                ("slug".into(), "hello".into())
            ])
        );
        assert!(Pattern::parse("health").is_err());
        assert!(Pattern::parse("/a/:").is_err());
    }

    #[test]
    fn normalisation_resolves_tricks_and_flags_them() {
        let n = normalise("/public/index.html");
        assert_eq!(n.path, "/public/index.html");
        assert!(n.canonical);
        for (raw, path) in [
            ("/public/../admin", "/admin"),
            ("/public/..%2fadmin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("//admin", "/admin"),
            ("/./admin", "/admin"),
            ("/public/./../admin/", "/admin/"),
            ("/public%2f..%2fadmin", "/admin"),
            ("/public\\..\\admin", "/public\\..\\admin"),
        ] {
            let n = normalise(raw);
            assert_eq!(n.path, path, "{raw}");
            assert!(!n.canonical, "{raw}");
        }
        assert_eq!(normalise("/a%20b").path, "/a b");
        assert!(normalise("/a%20b").canonical);
        assert_eq!(normalise("/").path, "/");
        assert!(normalise("/").canonical);
        assert_eq!(normalise("/../..").path, "/");
    }
}
