//! `warmer`: the Lambda function (custom runtime, the zip's `bootstrap`) that a scheduled rule
//! invokes to keep an alias's environments warm. Everything is in the `up_warmer` library.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    up_warmer::function::run(up_warmer::Options::default()).await
}
