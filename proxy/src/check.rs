//! The bootstrap's pure path, raw event bytes → request → response JSON, without sockets: what
//! the fuzz target (`fuzz/`) drives, and what its regression inputs replay in tests.

use crate::guard::probe;
use crate::request::translate;
use crate::response::{plain, to_lambda};

/// Runs one raw event through probing and translation, answers it with an app response that
/// echoes the translated request's headers and body, and serialises the Lambda response.
/// Returns the serialised response for HTTP events, `None` for others. Panics only on a bug:
/// that is what fuzzing looks for.
pub fn roundtrip(event: &[u8]) -> Option<Vec<u8>> {
    let probe = probe(event).ok()?;
    let shape = probe.shape();
    if !shape.is_http() {
        return None;
    }
    // `probe` succeeded, so the bytes are UTF-8.
    let raw = std::str::from_utf8(event).ok()?;
    let response = match translate(raw, probe, shape, "check") {
        Ok(translated) => {
            let (parts, body) = translated.request.into_parts();
            let mut response = http::Response::new(body);
            *response.headers_mut() = parts.headers;
            to_lambda(shape, response)
        }
        Err(e) => plain(shape, http::StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let json = serde_json::to_vec(&response);
    assert!(
        json.is_ok(),
        "a {} response failed to serialise: {json:?}",
        shape.name()
    );
    json.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every AWS-shaped fixture, and every input fuzzing ever found a problem with.
    #[test]
    fn fixtures_and_fuzz_regressions_round_trip() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut inputs = 0;
        for dir in ["tests/data", "fuzz/regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "md") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                let _ = roundtrip(&bytes);
                inputs += 1;
            }
        }
        assert!(inputs >= 10, "found only {inputs} inputs");
        assert!(roundtrip(include_bytes!("../../tests/data/apigw-v2.json")).is_some());
        assert!(roundtrip(include_bytes!("../../tests/data/s3-put.json")).is_none());
    }
}
