//! File names from API data. Names are built from SIDs and a fixed set of extensions,
//! never from free text (track names, room names), and every piece is checked here:
//! a SID is two capital letters and 32 hex digits, an extension one of the four media
//! containers Twilio writes. Nothing from the network can put `/`, `..` or NUL in a name.

/// A valid Twilio SID: two upper-case letters then 32 hex digits (`RT…`, `CJ…`, `RM…`).
pub fn is_sid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 34
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..].iter().all(u8::is_ascii_hexdigit)
}

/// The file extension for a container format from the API (`mka`, `mkv`, `mp4`, `webm`,
/// `wav`, any case), or `None` for anything else.
pub fn extension(format: &str) -> Option<&'static str> {
    ["mka", "mkv", "mp4", "webm", "wav"]
        .into_iter()
        .find(|e| format.eq_ignore_ascii_case(e))
}

/// `SID.ext`, when both parts are valid.
pub fn media_file_name(sid: &str, format: &str) -> Option<String> {
    (is_sid(sid)).then(|| extension(format).map(|e| format!("{sid}.{e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(is_sid("RT9742d3609830189dbace9af42ed70bf9"));
        assert!(is_sid("CJAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!is_sid("RT9742d3609830189dbace9af42ed70bf")); // 31 digits
        assert!(!is_sid("rt9742d3609830189dbace9af42ed70bf9"));
        assert!(!is_sid("RT/742d3609830189dbace9af42ed70bf9"));
        assert!(!is_sid("RT..42d3609830189dbace9af42ed70bf9"));
        assert_eq!(extension("MKA"), Some("mka"));
        assert_eq!(extension("mp4/../x"), None);
        assert_eq!(
            media_file_name("RT9742d3609830189dbace9af42ed70bf9", "mkv").as_deref(),
            Some("RT9742d3609830189dbace9af42ed70bf9.mkv")
        );
        assert_eq!(media_file_name("RT\0", "mkv"), None);
    }

    proptest! {
        /// Whatever the API sends, a name never holds a separator, a NUL or `..`.
        #[test]
        fn names_are_always_safe(sid in any::<String>(), format in any::<String>()) {
            if let Some(name) = media_file_name(&sid, &format) {
                prop_assert!(!name.contains('/') && !name.contains('\0') && !name.contains(".."));
                prop_assert!(name.len() <= 39);
            }
        }
    }
}
