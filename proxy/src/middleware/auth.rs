//! Authentication: `"auth": {"public": [...], "basic": {...}, "bearer": {...}, "jwt": {...}}`.
//!
//! - `basic`: users with argon2 or bcrypt hashes (plain-text passwords are refused when up.json
//!   loads), from `users` and/or an environment variable (`users_env`, `user:hash` per line).
//!   A password that verified once is remembered (as a SHA-256 digest of user and password) so
//!   a client does not pay the hash on every request.
//! - `bearer`: static tokens from an environment variable (`tokens_env`: one per line or
//!   comma-separated, `name:token` to name it), sent as `Authorization: Bearer <token>` or in a
//!   configurable header (`"header": "x-api-key"`); compared in constant time (SHA-256 digests,
//!   every token compared).
//! - `jwt`: `Authorization: Bearer <jwt>`, HS256 (`secret_env`) or RS256/ES256
//!   (`public_key_file`), `exp` required, `nbf` checked, `leeway` seconds of clock skew,
//!   `issuer`/`audience` when set.
//!
//! Any configured scheme may authenticate a request. Failures are `401` with one
//! `WWW-Authenticate` challenge per scheme (`error="invalid_token"` when a token was presented
//! and refused); a JWT that verifies but is meant for another issuer or audience is `403`
//! (authenticated, not allowed). On success the app gets the subject as `X-Up-User` (basic: the
//! user; bearer: the token's name; jwt: `sub`). A client's own `X-Up-User` is always removed,
//! and the credentials (`Authorization`, the bearer header) are not forwarded unless
//! `forward_authorization` is true.
//!
//! `public` path patterns skip authentication. They are matched on the normalised path, and
//! only when that path is canonical: `/public/..%2fadmin`, `//admin`, `/./admin` or
//! `/public/%2e%2e/admin` never count as public.

use super::pattern::{Patterns, normalise};
use super::{Request, Response, StackError, text};
use base64::Engine;
use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};
use up_config::{Auth as Config, is_password_hash};

static X_UP_USER: HeaderName = HeaderName::from_static("x-up-user");

/// Remembered successful basic-auth checks before the memory is cleared.
const REMEMBERED: usize = 256;

/// The auth layer for `up.json`'s `auth` (none: every request passes, `X-Up-User` removed).
pub fn layer(config: &up_config::Config, env: &crate::Env) -> Result<AuthLayer, StackError> {
    let Some(auth) = &config.auth else {
        return Ok(AuthLayer { policy: None });
    };
    Ok(AuthLayer {
        policy: Some(Arc::new(Policy::new(auth, env)?)),
    })
}

fn invalid(key: &str, message: impl Into<String>) -> StackError {
    StackError::Config {
        key: key.into(),
        message: message.into(),
    }
}

/// Adds authentication.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    policy: Option<Arc<Policy>>,
}

/// The schemes and rules, built once at start-up.
#[derive(Debug)]
struct Policy {
    public: Patterns,
    basic: Option<Basic>,
    bearer: Option<Bearer>,
    jwt: Option<Jwt>,
    forward_authorization: bool,
}

#[derive(Debug)]
struct Basic {
    realm: String,
    users: Vec<(String, String)>,
    /// SHA-256 of `user \0 password` for passwords that verified.
    remembered: Mutex<HashSet<[u8; 32]>>,
}

#[derive(Debug)]
struct Bearer {
    /// (name, SHA-256 of the token).
    tokens: Vec<(String, [u8; 32])>,
    header: Option<HeaderName>,
}

struct Jwt {
    secret: Option<DecodingKey>,
    public: Option<DecodingKey>,
    algorithms: Vec<Algorithm>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithms", &self.algorithms)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Policy {
    fn new(auth: &Config, env: &crate::Env) -> Result<Self, StackError> {
        let public = Patterns::parse(&auth.public).map_err(|m| invalid("auth.public", m))?;
        let basic = auth
            .basic
            .as_ref()
            .map(|b| Basic::new(b, env))
            .transpose()?;
        let bearer = auth
            .bearer
            .as_ref()
            .map(|b| Bearer::new(b, env))
            .transpose()?;
        let jwt = auth.jwt.as_ref().map(|j| Jwt::new(j, env)).transpose()?;
        if basic.is_none() && bearer.is_none() && jwt.is_none() {
            return Err(invalid(
                "auth",
                "no scheme configured: add \"basic\", \"bearer\" or \"jwt\"",
            ));
        }
        Ok(Self {
            public,
            basic,
            bearer,
            jwt,
            forward_authorization: auth.forward_authorization,
        })
    }

    fn is_public(&self, path: &str) -> bool {
        if self.public.is_empty() {
            return false;
        }
        let normalised = normalise(path);
        normalised.canonical && self.public.matches(&normalised.path)
    }

    /// Who sent `request`, or the response refusing it.
    // The refusal is the response itself, built once and moved once to the client.
    #[allow(clippy::result_large_err)]
    fn authenticate(&self, request: &Request) -> Result<String, Response> {
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if let Some(value) = authorization {
            let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
            let credentials = credentials.trim();
            if scheme.eq_ignore_ascii_case("basic")
                && let Some(basic) = &self.basic
            {
                return basic
                    .check(credentials)
                    .ok_or_else(|| self.refuse(None, "invalid user or password"));
            }
            if scheme.eq_ignore_ascii_case("bearer") {
                if let Some(name) = self.bearer.as_ref().and_then(|b| b.check(credentials)) {
                    return Ok(name);
                }
                if let Some(jwt) = &self.jwt {
                    return jwt.check(credentials).map_err(|refusal| match refusal {
                        Refusal::Invalid(why) => self.refuse(Some(&why), "invalid token"),
                        Refusal::Forbidden(why) => forbidden(&why),
                    });
                }
                if self.bearer.is_some() {
                    return Err(self.refuse(Some("unknown token"), "invalid token"));
                }
            }
        }
        if let Some(bearer) = &self.bearer
            && let Some(header) = &bearer.header
            && let Some(token) = request.headers().get(header).and_then(|v| v.to_str().ok())
        {
            return bearer
                .check(token.trim())
                .ok_or_else(|| self.refuse(Some("unknown token"), "invalid token"));
        }
        Err(self.refuse(None, "authentication required"))
    }

    /// `401` with a challenge per configured scheme.
    fn refuse(&self, token_error: Option<&str>, message: &str) -> Response {
        let mut response = text(
            StatusCode::UNAUTHORIZED,
            &format!("Unauthorized: {message}"),
        );
        let realm = self.basic.as_ref().map_or("up", |b| b.realm.as_str());
        let headers = response.headers_mut();
        if self.basic.is_some() {
            let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", quoted(realm));
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.append(WWW_AUTHENTICATE, v);
            }
        }
        if self.bearer.is_some() || self.jwt.is_some() {
            let mut challenge = format!("Bearer realm=\"{}\"", quoted(realm));
            if let Some(error) = token_error {
                challenge.push_str(&format!(
                    ", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(error)
                ));
            }
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.append(WWW_AUTHENTICATE, v);
            }
        }
        response
    }

    /// What the app gets: no client `X-Up-User`, no credentials unless forwarded, the subject.
    fn prepare(&self, request: &mut Request, user: Option<&str>) {
        let headers = request.headers_mut();
        headers.remove(&X_UP_USER);
        if !self.forward_authorization {
            headers.remove(AUTHORIZATION);
            if let Some(header) = self.bearer.as_ref().and_then(|b| b.header.as_ref()) {
                headers.remove(header);
            }
        }
        if let Some(value) = user.and_then(|u| HeaderValue::from_str(u).ok()) {
            headers.insert(X_UP_USER.clone(), value);
        }
    }
}

/// `403` for an identity that is not allowed here.
fn forbidden(why: &str) -> Response {
    let mut response = text(StatusCode::FORBIDDEN, &format!("Forbidden: {why}"));
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
        quoted(why)
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    response
}

/// A value safe inside a quoted-string.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl Basic {
    fn new(config: &up_config::BasicAuth, env: &crate::Env) -> Result<Self, StackError> {
        let mut users: Vec<(String, String)> = config
            .users
            .iter()
            .map(|(u, h)| (u.clone(), h.clone()))
            .collect();
        if let Some(var) = &config.users_env {
            let key = "auth.basic.users_env";
            let value = env
                .get(var)
                .ok_or_else(|| invalid(key, format!("environment variable {var} is not set")))?;
            for (n, line) in value.lines().map(str::trim).enumerate() {
                if line.is_empty() {
                    continue;
                }
                let (user, hash) = line.split_once(':').ok_or_else(|| {
                    invalid(key, format!("{var} line {}: expected user:hash", n + 1))
                })?;
                if !is_password_hash(hash) {
                    return Err(invalid(
                        key,
                        format!(
                            "{var} line {}: user {user:?}: expected an argon2 or bcrypt hash, got a plain-text password",
                            n + 1
                        ),
                    ));
                }
                users.push((user.to_owned(), hash.to_owned()));
            }
        }
        Ok(Self {
            realm: config.realm.clone(),
            users,
            remembered: Mutex::new(HashSet::new()),
        })
    }

    /// The user whose `user:password` (base64) this is.
    fn check(&self, credentials: &str) -> Option<String> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let digest = sha256(&[user.as_bytes(), password.as_bytes()]);
        let mut remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.contains(&digest) {
            return Some(user.to_owned());
        }
        drop(remembered);
        // Every user with that name is tried (a user may appear in up.json and the variable).
        let ok = self
            .users
            .iter()
            .filter(|(u, _)| u == user)
            .any(|(_, hash)| verify_password(password, hash));
        if !ok {
            return None;
        }
        remembered = self
            .remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(digest);
        Some(user.to_owned())
    }
}

/// Checks `password` against an argon2 or bcrypt hash.
fn verify_password(password: &str, hash: &str) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::PasswordVerifier;
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

impl Bearer {
    fn new(config: &up_config::BearerAuth, env: &crate::Env) -> Result<Self, StackError> {
        let key = "auth.bearer.tokens_env";
        let var = &config.tokens_env;
        let value = env
            .get(var)
            .ok_or_else(|| invalid(key, format!("environment variable {var} is not set")))?;
        let tokens: Vec<(String, [u8; 32])> = value
            .split(['\n', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
            .map(|(n, entry)| match entry.split_once(':') {
                Some((name, token)) if !name.is_empty() && !token.is_empty() => {
                    (name.to_owned(), sha256(&[token.as_bytes()]))
                }
                _ => (format!("token-{}", n + 1), sha256(&[entry.as_bytes()])),
            })
            .collect();
        if tokens.is_empty() {
            return Err(invalid(key, format!("{var} holds no tokens")));
        }
        let header = config
            .header
            .as_deref()
            .map(|h| {
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|e| invalid("auth.bearer.header", format!("{h:?}: {e}")))
            })
            .transpose()?;
        Ok(Self { tokens, header })
    }

    /// The name of the token, comparing against every token in constant time.
    fn check(&self, token: &str) -> Option<String> {
        let digest = sha256(&[token.as_bytes()]);
        let mut found = None;
        for (name, known) in &self.tokens {
            if bool::from(known.ct_eq(&digest)) && found.is_none() {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// Why a JWT was refused.
#[derive(Debug)]
enum Refusal {
    /// Not a valid token: `401`.
    Invalid(String),
    /// Valid, but for another issuer or audience: `403`.
    Forbidden(String),
}

impl Jwt {
    fn new(config: &up_config::JwtAuth, env: &crate::Env) -> Result<Self, StackError> {
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| match a.as_str() {
                "HS256" => Ok(Algorithm::HS256),
                "RS256" => Ok(Algorithm::RS256),
                "ES256" => Ok(Algorithm::ES256),
                other => Err(invalid(
                    "auth.jwt.algorithms",
                    format!("unsupported algorithm {other:?} (HS256, RS256, ES256)"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secret = match &config.secret_env {
            Some(var) => Some(DecodingKey::from_secret(
                env.get(var)
                    .ok_or_else(|| {
                        invalid(
                            "auth.jwt.secret_env",
                            format!("environment variable {var} is not set"),
                        )
                    })?
                    .as_bytes(),
            )),
            None => None,
        };
        let public = match &config.public_key_file {
            Some(file) => {
                let key = "auth.jwt.public_key_file";
                let path = env.task_root().join(file);
                let pem = std::fs::read(&path)
                    .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
                let rsa = DecodingKey::from_rsa_pem(&pem);
                let ec = DecodingKey::from_ec_pem(&pem);
                let wants_ec = algorithms.contains(&Algorithm::ES256);
                let parsed = if wants_ec { ec.or(rsa) } else { rsa.or(ec) };
                Some(parsed.map_err(|e| {
                    invalid(
                        key,
                        format!("{}: not an RSA or EC public key: {e}", path.display()),
                    )
                })?)
            }
            None => None,
        };
        // `algorithms` left at its default (HS256) with only a public key: the key decides.
        let mut algorithms = algorithms;
        let mut public = public;
        if algorithms == [Algorithm::HS256]
            && secret.is_none()
            && let Some(file) = &config.public_key_file
        {
            let pem = std::fs::read(env.task_root().join(file)).unwrap_or_default();
            if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                algorithms = vec![Algorithm::ES256];
                public = Some(key);
            } else if public.is_some() {
                algorithms = vec![Algorithm::RS256];
            }
        }
        let hs = algorithms.contains(&Algorithm::HS256);
        if hs && secret.is_none() {
            return Err(invalid("auth.jwt", "HS256 needs \"secret_env\""));
        }
        if algorithms.iter().any(|a| *a != Algorithm::HS256) && public.is_none() {
            return Err(invalid("auth.jwt", "RS256/ES256 need \"public_key_file\""));
        }
        Ok(Self {
            secret,
            public,
            algorithms,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
        })
    }

    /// The token's subject.
    fn check(&self, token: &str) -> Result<String, Refusal> {
        use jsonwebtoken::errors::ErrorKind;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(Refusal::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = match header.alg {
            Algorithm::HS256 => self.secret.as_ref(),
            _ => self.public.as_ref(),
        }
        .ok_or_else(|| Refusal::Invalid("no key for this algorithm".into()))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidAudience => {
                    Refusal::Forbidden("the token is for another audience".into())
                }
                ErrorKind::InvalidIssuer => {
                    Refusal::Forbidden("the token is from another issuer".into())
                }
                ErrorKind::ExpiredSignature => Refusal::Invalid("the token has expired".into()),
                ErrorKind::ImmatureSignature => {
                    Refusal::Invalid("the token is not valid yet".into())
                }
                _ => Refusal::Invalid(e.to_string()),
            },
        )?;
        Ok(data
            .claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_owned())
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    policy: Option<Arc<Policy>>,
}

impl<S> Service<Request> for Auth<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let Some(policy) = &self.policy else {
            request.headers_mut().remove(&X_UP_USER);
            return AuthFuture::Inner {
                future: self.inner.call(request),
            };
        };
        let user = if policy.is_public(request.uri().path()) {
            None
        } else {
            match policy.authenticate(&request) {
                Ok(user) => Some(user),
                Err(response) => {
                    return AuthFuture::Reject {
                        response: Some(response),
                    };
                }
            }
        };
        policy.prepare(&mut request, user.as_deref());
        AuthFuture::Inner {
            future: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The future of [`Auth`]: the refusal, or the inner service's.
    #[project = AuthProj]
    #[derive(Debug)]
    pub enum AuthFuture<F> {
        /// Refused.
        Reject { response: Option<Response> },
        /// Let through.
        Inner { #[pin] future: F },
    }
}

impl<F, E> Future for AuthFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthProj::Reject { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            AuthProj::Inner { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests;
