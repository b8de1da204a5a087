//! Text that came from outside (queue messages, registry answers, git), made safe to print: credentials
//! taken out and control characters escaped, so that no error or log line can leak a password or forge
//! another line.

use std::fmt::Write as _;

const REDACTED: &str = "<redacted>";

/// `text` with each of `secrets` (non-empty) replaced, and anything shaped like an `Authorization` value
/// (`Basic …`, `Bearer …`) cut after its scheme.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, REDACTED);
    }
    authorization_values(&text)
}

fn authorization_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        let (before, from) = rest.split_at(at);
        let scheme_len = from.find(' ').map_or(from.len(), |i| i + 1);
        out.push_str(before);
        out.push_str(&from[..scheme_len]);
        let value = &from[scheme_len..];
        let end = value
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=._~-".contains(c)))
            .unwrap_or(value.len());
        // Tokens are long; a short word after "basic" is prose, left as it is.
        if end >= 8 {
            out.push_str(REDACTED);
            rest = &value[end..];
        } else {
            rest = value;
        }
    }
    out.push_str(rest);
    out
}

/// Where the next `Basic ` or `Bearer ` (any case) starts.
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    ["basic ", "bearer "]
        .iter()
        .filter_map(|scheme| lower.find(scheme))
        .min()
}

/// An error and all its causes, `: `-separated (a library's top-level message, such as reqwest's "error sending
/// request", hides the cause).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `text` on one line: control characters (newlines included) written as escapes.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_authorization_values_are_taken_out() {
        let echoed = "bad request: Authorization: Basic QVdTOjExMTEtYXV0aC10b2tlbg== for AWS:1111-auth-token, \
                      bearer eyJhbGciOi.x-y_z";
        let scrubbed = scrub(echoed, &["1111-auth-token"]);
        assert!(!scrubbed.contains("QVdTOjEx"), "{scrubbed}");
        assert!(!scrubbed.contains("1111-auth-token"), "{scrubbed}");
        assert!(!scrubbed.contains("eyJhbGciOi"), "{scrubbed}");
        assert_eq!(
            scrubbed,
            "bad request: Authorization: Basic <redacted> for AWS:<redacted>, bearer <redacted>"
        );
        assert_eq!(scrub("a basic fact", &[]), "a basic fact");
        assert_eq!(scrub("nothing here", &[]), "nothing here");
    }

    #[test]
    fn control_characters_cannot_start_a_line() {
        assert_eq!(
            one_line("v9\n2026 INFO recorded release\r\t\u{1b}[0m"),
            "v9\\n2026 INFO recorded release\\r\\t\\u{1b}[0m"
        );
        assert_eq!(one_line("plain"), "plain");
    }
}
