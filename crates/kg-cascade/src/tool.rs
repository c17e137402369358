//! Running external tools: no shell, captured output, a deadline.

use std::process::Output;
use std::time::Duration;

use crate::Error;

/// Runs `expr` with stdin closed and both outputs captured; kills it at `timeout`.
pub(crate) fn run(
    tool: &'static str,
    expr: duct::Expression,
    timeout: Duration,
) -> Result<Output, Error> {
    let handle = expr
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(|e| Error::Tool {
            tool,
            message: format!("cannot start: {e}"),
            hint: None,
        })?;
    match handle.wait_timeout(timeout) {
        Ok(Some(out)) => Ok(out.clone()),
        Ok(None) => {
            let _ = handle.kill();
            Err(Error::Tool {
                tool,
                message: format!("no answer within {} s", timeout.as_secs()),
                hint: None,
            })
        }
        Err(e) => Err(Error::Tool {
            tool,
            message: e.to_string(),
            hint: None,
        }),
    }
}

/// The last non-empty line of a tool's stderr: where Go CLIs put the actual error. Control
/// characters are escaped: it ends up on the user's terminal.
pub(crate) fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    clean(
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim(),
    )
}

/// Escapes control characters in text from another program.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
