//! Progress of long commands, on stderr: a spinner with the current step on a terminal
//! (indicatif), plain lines otherwise. Results go to stdout, so `--output json` stays clean.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    spinner: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A spinner when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::plain();
        }
        let spinner = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
            spinner.set_style(style);
        }
        spinner.enable_steady_tick(Duration::from_millis(100));
        Self {
            spinner: Some(spinner),
            quiet: false,
        }
    }

    /// Plain lines only (tests, pipes, CI).
    pub fn plain() -> Self {
        Self {
            spinner: None,
            quiet: false,
        }
    }

    /// Nothing at all (the caller prints the result itself).
    pub fn plain_quiet() -> Self {
        Self {
            spinner: None,
            quiet: true,
        }
    }

    /// The step now running (shown on the spinner; plain output waits for [`Progress::done`]).
    pub fn step(&self, what: &str) {
        if let Some(spinner) = &self.spinner {
            spinner.set_message(what.to_owned());
        }
    }

    /// A finished step, kept on screen.
    pub fn done(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.spinner {
            Some(spinner) => spinner.println(format!("  {line}")),
            None => eprintln!("  {line}"),
        }
    }

    /// Something the user should know that does not stop the command.
    pub fn warn(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.spinner {
            Some(spinner) => spinner.println(format!("  warning: {line}")),
            None => eprintln!("  warning: {line}"),
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
