//! `bootstrap`: the Lambda custom runtime. Everything is in the `up_proxy` library.

use std::process::ExitCode;

/// musl's allocator hands a size class's memory back to the kernel as soon as it is free, so
/// an invocation that grows and frees a few buffers paid an `mmap` + `munmap` pair (and a TLB
/// shoot-down) each time; dlmalloc keeps freed memory for the next invocation.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
