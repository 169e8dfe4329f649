//! End-to-end test support for up: the real `bootstrap` binary under `up-emulator` and
//! under ministack, wrapping real apps from `examples/`.
//!
//! # Layout
//! - `paths`: where the workspace, the built bootstrap, the ministack venv and the example
//!   apps are; panics with the command to run when one is missing (suites never skip).
//! - `harness`: the real bootstrap under `up-emulator`, the same app run directly, fixtures.
//! - `ministack`: start/stop a ministack server from the project's venv, package zips,
//!   deploy a function behind an alias, API Gateway v1/v2 and Function URLs, and call
//!   them over plain HTTP. What ministack does and does not emulate: `tests/MINISTACK.md`.

pub mod harness;
pub mod ministack;
pub mod paths;
