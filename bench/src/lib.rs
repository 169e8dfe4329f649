//! Helpers for the bootstrap benchmark (`cargo bench -p up-bench`, see `BENCHMARKS.md`).
//!
//! The benchmark itself is `benches/bootstrap.rs`; it measures one invocation through the
//! real `bootstrap` under `up-emulator`, the same invocation through a runtime that does
//! nothing (the Runtime API's own floor), and the same HTTP request sent straight to the app,
//! and subtracts. This library holds the pieces it shares with the `null-runtime` bin.
//!
//! # Layout
//!
//! - [`client`]: one HTTP/1.1 keep-alive connection and a request/response exchange on it.
//! - [`null_runtime`]: the runtime that answers every event at once, without any app.
//! - [`procfs`]: memory and CPU time of a process, its children, the machine (from `/proc`).
//! - [`stats`]: median and p99 of a sample of durations.
//! - [`error`]: the crate's [`Error`].

pub mod client;
pub mod error;
pub mod null_runtime;
pub mod procfs;
pub mod stats;

pub use error::Error;
