//! `up.json`: the one file that configures an up app.
//!
//! It keeps apex/up's keys and defaults (`name`, `proxy.command` = `./server`, `proxy.timeout`
//! 15 s, `lambda.memory` 512 MB, ...), adds up's own (`throttle`, `auth`, `url`), applies a
//! stage's overrides (chosen by `UP_STAGE` in the bootstrap, by the command line in `up`), and
//! detects how to start the app when `proxy.command` is absent.
//!
//! Unknown keys and bad values are errors naming the key path:
//! `up.json: proxy.listen_timeout: expected seconds (1..=25), got "abc"`.
//!
//! # Layout
//! - `schema`: the sections and their defaults.
//! - `value`: validated value types (bounded durations, sizes, levels, ordered maps).
//! - `load`: reading the file, stage overrides, error paths.
//! - `detect`: the start command for a project without `proxy.command`.
//! - `error`: [`ConfigError`].

mod detect;
mod error;
mod load;
pub mod schema;
pub mod value;

pub use detect::detect_command;
pub use error::ConfigError;
pub use load::{FILE_NAME, IMPLICIT_STAGES, load, parse};
pub use schema::*;
