//! `null-runtime`: a Lambda custom runtime that answers every event at once with a constant
//! response and runs no app. See [`up_bench::null_runtime`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(api) = std::env::var("AWS_LAMBDA_RUNTIME_API").ok() else {
        eprintln!("null-runtime: {}", up_bench::Error::NoRuntimeApi);
        return ExitCode::FAILURE;
    };
    // One thread, like the bootstrap.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("null-runtime: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let api = up_bench::null_runtime::api_address(&api);
    match runtime.block_on(up_bench::null_runtime::run(api)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut line = format!("null-runtime: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
