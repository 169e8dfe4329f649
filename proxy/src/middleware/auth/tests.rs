use super::*;
use bytes::Bytes;
use serde_json::json;
use std::convert::Infallible;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/middleware/auth/testdata");

fn env(vars: &[(&str, &str)]) -> crate::Env {
    let mut all: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("LAMBDA_TASK_ROOT".into(), TESTDATA.into()));
    crate::Env::from_iter(all)
}

fn build(auth: serde_json::Value, env: &crate::Env) -> Result<AuthLayer, StackError> {
    let text = json!({"name": "t", "auth": auth}).to_string();
    let config = up_config::parse(&text, Path::new("up.json"), None).unwrap();
    layer(&config, env)
}

/// What the app saw: its headers, or `None` when the request never reached it.
struct Sent {
    response: Response,
    app_headers: Option<http::HeaderMap>,
}

async fn send(layer: &AuthLayer, path: &str, headers: &[(&str, &str)]) -> Sent {
    let seen = Arc::new(Mutex::new(None));
    let app = {
        let seen = seen.clone();
        tower::service_fn(move |r: Request| {
            *seen.lock().unwrap() = Some(r.headers().clone());
            async { Ok::<_, Infallible>(Response::new(Bytes::from_static(b"app"))) }
        })
    };
    let mut request = http::Request::builder().uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = layer
        .layer(app)
        .oneshot(request.body(Bytes::new()).unwrap())
        .await
        .unwrap();
    let app_headers = seen.lock().unwrap().take();
    Sent {
        response,
        app_headers,
    }
}

fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn challenges(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn argon2_hash(password: &str) -> String {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), b"saltsaltsaltsalt")
        .unwrap()
        .to_string()
}

fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_salt(password, 4, [7u8; 16])
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn basic_auth_with_argon2_and_bcrypt_users() {
    let users_env = format!("bob:{}\n", bcrypt_hash("builder"));
    let env = env(&[("UP_BASIC_USERS", &users_env)]);
    let layer = build(
        json!({"basic": {"realm": "staff", "users": {"alice": argon2_hash("wonderland")},
                         "users_env": "UP_BASIC_USERS"}}),
        &env,
    )
    .unwrap();

    let none = send(&layer, "/", &[]).await;
    assert_eq!(none.response.status(), 401);
    assert!(none.app_headers.is_none(), "the app never sees it");
    assert_eq!(
        challenges(&none.response),
        ["Basic realm=\"staff\", charset=\"UTF-8\""]
    );

    for _ in 0..2 {
        // The second time is answered from memory; same outcome.
        let ok = send(
            &layer,
            "/",
            &[("authorization", &basic("alice", "wonderland"))],
        )
        .await;
        assert_eq!(ok.response.status(), 200);
        let seen = ok.app_headers.unwrap();
        assert_eq!(seen["x-up-user"], "alice");
        assert!(seen.get(AUTHORIZATION).is_none(), "not forwarded");
    }
    let bob = send(&layer, "/", &[("authorization", &basic("bob", "builder"))]).await;
    assert_eq!(bob.app_headers.unwrap()["x-up-user"], "bob");

    for wrong in [
        basic("alice", "nope"),
        basic("mallory", "wonderland"),
        "Basic !!!".into(),
    ] {
        let refused = send(&layer, "/", &[("authorization", &wrong)]).await;
        assert_eq!(refused.response.status(), 401, "{wrong}");
        assert!(refused.app_headers.is_none());
    }
}

#[tokio::test]
async fn plain_text_passwords_and_missing_variables_are_refused_at_start() {
    let e = build(json!({"basic": {"users_env": "UP_BASIC_USERS"}}), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("UP_BASIC_USERS is not set"), "{e}");
    let e = build(
        json!({"basic": {"users_env": "U"}}),
        &env(&[("U", "carol:secret")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("plain-text password"), "{e}");
    let e = build(json!({"bearer": {"tokens_env": "T"}}), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("T is not set"), "{e}");
    let e = build(json!({"public": ["/x"]}), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no scheme"), "{e}");
}

#[tokio::test]
async fn bearer_tokens_from_authorization_or_a_header() {
    let env = env(&[("UP_API_TOKENS", "ci:tok-1\ntok-2")]);
    let layer = build(
        json!({"bearer": {"tokens_env": "UP_API_TOKENS", "header": "x-api-key"}}),
        &env,
    )
    .unwrap();
    let ok = send(&layer, "/", &[("authorization", "Bearer tok-1")]).await;
    assert_eq!(ok.response.status(), 200);
    assert_eq!(ok.app_headers.unwrap()["x-up-user"], "ci");
    let ok = send(&layer, "/", &[("x-api-key", "tok-2")]).await;
    let seen = ok.app_headers.unwrap();
    assert_eq!(seen["x-up-user"], "token-2");
    assert!(seen.get("x-api-key").is_none(), "the key is a credential");

    let refused = send(&layer, "/", &[("authorization", "Bearer tok-3")]).await;
    assert_eq!(refused.response.status(), 401);
    assert!(challenges(&refused.response)[0].contains("error=\"invalid_token\""));
    let refused = send(&layer, "/", &[("x-api-key", "tok-")]).await;
    assert_eq!(refused.response.status(), 401);
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwt(alg: Algorithm, claims: serde_json::Value) -> String {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(b"s3cret"),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(
            &std::fs::read(format!("{TESTDATA}/rsa-private.pem")).unwrap(),
        )
        .unwrap(),
        _ => {
            EncodingKey::from_ec_pem(&std::fs::read(format!("{TESTDATA}/ec-private.pem")).unwrap())
                .unwrap()
        }
    };
    encode(&Header::new(alg), &claims, &key).unwrap()
}

#[tokio::test]
async fn jwt_hs256_with_exp_nbf_issuer_and_audience() {
    let env = env(&[("JWT_SECRET", "s3cret")]);
    let layer = build(
        json!({"jwt": {"issuer": "https://id.example", "audience": "api", "secret_env": "JWT_SECRET", "leeway": 5}}),
        &env,
    )
    .unwrap();
    let good =
        json!({"sub": "user-7", "iss": "https://id.example", "aud": "api", "exp": now() + 60});
    let ok = send(
        &layer,
        "/",
        &[(
            "authorization",
            &format!("Bearer {}", jwt(Algorithm::HS256, good.clone())),
        )],
    )
    .await;
    assert_eq!(ok.response.status(), 200);
    assert_eq!(ok.app_headers.unwrap()["x-up-user"], "user-7");

    let cases = [
        (
            json!({"sub": "u", "iss": "https://id.example", "aud": "api", "exp": now() - 60}),
            401,
        ),
        // Within the 5 s leeway.
        (
            json!({"sub": "u", "iss": "https://id.example", "aud": "api", "exp": now() - 2}),
            200,
        ),
        (
            json!({"sub": "u", "iss": "https://id.example", "aud": "api", "exp": now() + 60, "nbf": now() + 60}),
            401,
        ),
        (
            json!({"sub": "u", "iss": "https://id.example", "aud": "api"}),
            401,
        ),
        (
            json!({"sub": "u", "iss": "https://other", "aud": "api", "exp": now() + 60}),
            403,
        ),
        (
            json!({"sub": "u", "iss": "https://id.example", "aud": "web", "exp": now() + 60}),
            403,
        ),
    ];
    for (claims, status) in cases {
        let token = jwt(Algorithm::HS256, claims.clone());
        let sent = send(
            &layer,
            "/",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(sent.response.status(), status, "{claims}");
        assert_eq!(sent.app_headers.is_some(), status == 200);
    }
    // A token signed with another secret.
    let forged = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"guess"),
        )
        .unwrap()
    };
    let sent = send(
        &layer,
        "/",
        &[("authorization", &format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(sent.response.status(), 401);
    assert!(challenges(&sent.response)[0].starts_with("Bearer realm="));
}

#[tokio::test]
async fn jwt_rs256_and_es256_from_a_public_key_file() {
    for (alg, name, file) in [
        (Algorithm::RS256, "RS256", "rsa-public.pem"),
        (Algorithm::ES256, "ES256", "ec-public.pem"),
    ] {
        let layer = build(
            json!({"jwt": {"algorithms": [name], "public_key_file": file}}),
            &env(&[]),
        )
        .unwrap();
        let token = jwt(alg, json!({"sub": "k", "exp": now() + 60}));
        let ok = send(
            &layer,
            "/",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(ok.response.status(), 200, "{name}");
        // An HS256 token is refused when only RS256/ES256 is accepted.
        let layer_hs = build(
            json!({"jwt": {"algorithms": [name], "public_key_file": file}}),
            &env(&[]),
        )
        .unwrap();
        let hs = jwt(Algorithm::HS256, json!({"sub": "k", "exp": now() + 60}));
        let refused = send(
            &layer_hs,
            "/",
            &[("authorization", &format!("Bearer {hs}"))],
        )
        .await;
        assert_eq!(refused.response.status(), 401, "{name}");
    }
    // Without `algorithms`, the public key's type decides.
    for (alg, file) in [
        (Algorithm::RS256, "rsa-public.pem"),
        (Algorithm::ES256, "ec-public.pem"),
    ] {
        let layer = build(json!({"jwt": {"public_key_file": file}}), &env(&[])).unwrap();
        let token = jwt(alg, json!({"sub": "k", "exp": now() + 60}));
        let ok = send(
            &layer,
            "/",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(ok.response.status(), 200, "{file}");
    }
    let e = build(
        json!({"jwt": {"algorithms": ["RS256"], "public_key_file": "missing.pem"}}),
        &env(&[]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn public_paths_skip_auth_but_path_tricks_do_not() {
    let env = env(&[("T", "tok")]);
    let layer = build(
        json!({"public": ["/public/*", "/health"], "bearer": {"tokens_env": "T"}}),
        &env,
    )
    .unwrap();
    let open = send(&layer, "/public/logo.png", &[("x-up-user", "admin")]).await;
    assert_eq!(open.response.status(), 200);
    assert!(
        open.app_headers.unwrap().get("x-up-user").is_none(),
        "a client cannot claim a user"
    );
    assert_eq!(send(&layer, "/health", &[]).await.response.status(), 200);
    for trick in [
        "/public/../admin",
        "/public/..%2fadmin",
        "/public/%2e%2e/admin",
        "/public%2f..%2fadmin",
        "//health/../admin",
        "/./health/../admin",
        "/health/%2e%2e/admin",
        "/public/./../admin",
    ] {
        let sent = send(&layer, trick, &[]).await;
        assert_eq!(sent.response.status(), 401, "{trick}");
        assert!(sent.app_headers.is_none(), "{trick}");
    }
    // Not configured: nothing is checked, but X-Up-User is still the bootstrap's alone.
    let none = AuthLayer { policy: None };
    let sent = send(&none, "/", &[("x-up-user", "admin")]).await;
    assert!(sent.app_headers.unwrap().get("x-up-user").is_none());
}

#[tokio::test]
async fn forward_authorization_keeps_the_header() {
    let env = env(&[("T", "tok")]);
    let layer = build(
        json!({"bearer": {"tokens_env": "T"}, "forward_authorization": true}),
        &env,
    )
    .unwrap();
    let sent = send(&layer, "/", &[("authorization", "Bearer tok")]).await;
    assert_eq!(sent.app_headers.unwrap()[AUTHORIZATION], "Bearer tok");
}
