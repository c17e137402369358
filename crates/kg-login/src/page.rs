//! The pages' pieces: the document shell, its one style sheet (`page.css`, allowed by its
//! hash in the Content-Security-Policy) and icon (`lock.svg`), and text helpers.

use std::fmt::Write as _;

/// A padlock (after Feather's `lock`, MIT), drawn in the accent colour.
pub(crate) const ICON: &str = include_str!("lock.svg");

/// The pages' only style, allowed by its hash in the Content-Security-Policy.
pub(crate) const STYLE: &str = include_str!("page.css");

/// The document around a page's content. `title` is escaped already.
pub(crate) fn shell(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n\
         <html lang=\"en\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"referrer\" content=\"same-origin\">\n\
         <title>{title}</title>\n\
         <style>{STYLE}</style>\n\
         </head>\n\
         <body>\n\
         <main>\n\
         <div class=\"mark\" aria-hidden=\"true\">{ICON}</div>\n\
         {content}\
         </main>\n\
         </body>\n\
         </html>\n"
    )
}

/// A duration as people say it: `12 hours`, `30 minutes`.
pub(crate) fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        (s / 3_600, "hour")
    } else if s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn push_error(b: &mut String, error: Option<&str>) {
    if let Some(e) = error {
        let _ = writeln!(b, "<p id=\"error\" role=\"alert\">{}</p>", escape(e));
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` replaced by character references.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An error message as a sentence for a page: capitalised, with a full stop.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}
