//! Text from the network, made safe to print: [`printable`] is the one escaping every
//! command applies where it prints what a server said (error messages, `ls` cells,
//! `doctor` lines), so that an API message, an S3 `<Code>` or a settings value cannot
//! drive the terminal (`ESC ]0;…BEL` retitles it, `ESC [2J` clears it) or forge a line
//! of output after a newline. The mount's log is escaped by its own formatter.

/// `text` with its control characters (C0, DEL, C1: `\u{1b}`, `\n`, `\r`, `\u{7}`) and
/// bidirectional overrides (which reorder what is shown) escaped as Rust escapes, the
/// rest as it is.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode's bidirectional formatting characters (marks, embeddings, overrides,
/// isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("a\u{1b}]0;t\u{7}b\u{1b}[2J\r\nforged\u{9b}é\u{202e}"),
            "a\\u{1b}]0;t\\u{7}b\\u{1b}[2J\\r\\nforged\\u{9b}é\\u{202e}"
        );
        assert_eq!(
            printable("plain: text (ok) → 100%"),
            "plain: text (ok) → 100%"
        );
    }
}
