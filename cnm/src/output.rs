//! What `cnm` prints: text and JSON on stdout (a closed pipe, as in `cnm endpoint ls | head`,
//! is not an error), and errors as one line.

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;

use serde::Serialize;

use crate::Outcome;

/// Writes `text` to stdout.
pub fn emit(text: &str) -> Outcome {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing to stdout: {e}").into()),
        Ok(()) => Ok(()),
    }
}

/// Writes `value` to stdout as indented JSON.
pub fn emit_json<T: Serialize>(value: &T) -> Outcome {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text)
}

/// An error and its causes on one line; a cause already in its parent's message is not
/// repeated.
pub fn one_line(err: &dyn Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line.replace('\n', " ")
}

/// Help and version go out as clap prints them; a usage error is one line, exit status 2.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("cnm: {first} (see --help)");
            ExitCode::from(2)
        }
    }
}
