//! `bootstrap`: the Lambda custom runtime. Everything is in the `up_proxy` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    // One thread: Lambda hands a runtime one event at a time, and a single-threaded scheduler
    // starts faster and uses less memory than a pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bootstrap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(up_proxy::run(up_proxy::Env::from_process()));
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
