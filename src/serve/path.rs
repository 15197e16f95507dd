//! A request's path as the names of the tree it walks: `/rooms/RMxx/RTyy.mka` →
//! `["rooms", "RMxx", "RTyy.mka"]`.
//!
//! Pure. This is the one place a URL path becomes names, and it refuses anything that
//! could mean a different place than it says: `.` and `..`, an encoded slash or
//! backslash (`%2F`, `%5C`), a NUL, bad percent-encoding, names that are not UTF-8.
//! Whatever passes is then only ever looked up name by name in the tree, which knows
//! SIDs and fixed directory names only, so no path reaches anything outside it.

use percent_encoding::percent_decode_str;

/// Why a path was refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("a path must start with /")]
    NotAbsolute,
    #[error("`.` and `..` are not allowed in paths")]
    Dots,
    #[error("encoded slashes, backslashes and NUL are not allowed in names")]
    Separator,
    #[error("bad percent-encoding, or a name that is not UTF-8")]
    Encoding,
}

/// The path's names, decoded, and whether it ended with `/`. Empty names (`//`) are
/// skipped.
pub fn names(raw: &str) -> Result<(Vec<String>, bool), BadPath> {
    let rest = raw.strip_prefix('/').ok_or(BadPath::NotAbsolute)?;
    let mut out = Vec::new();
    for part in rest.split('/') {
        if part.is_empty() {
            continue;
        }
        if !valid_escapes(part) {
            return Err(BadPath::Encoding);
        }
        let name = percent_decode_str(part)
            .decode_utf8()
            .map_err(|_| BadPath::Encoding)?;
        if name == "." || name == ".." {
            return Err(BadPath::Dots);
        }
        if name.contains(['/', '\\', '\0']) {
            return Err(BadPath::Separator);
        }
        out.push(name.into_owned());
    }
    Ok((out, raw.ends_with('/')))
}

/// Every `%` is followed by two hex digits (`percent_decode_str` would pass a lone `%`
/// through as it is).
fn valid_escapes(part: &str) -> bool {
    let b = part.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(raw: &str) -> Vec<String> {
        names(raw).unwrap().0
    }

    #[test]
    fn plain_paths() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(ok("/recordings/RT1.mka"), ["recordings", "RT1.mka"]);
        assert_eq!(ok("//rooms///RM1/"), ["rooms", "RM1"]);
        assert!(names("/rooms/").unwrap().1);
        assert!(!names("/rooms").unwrap().1);
        assert_eq!(ok("/a%20b"), ["a b"]);
    }

    #[test]
    fn refused() {
        assert_eq!(names("rooms"), Err(BadPath::NotAbsolute));
        assert_eq!(names("/.."), Err(BadPath::Dots));
        assert_eq!(names("/rooms/../etc"), Err(BadPath::Dots));
        assert_eq!(names("/%2e%2e/etc"), Err(BadPath::Dots));
        assert_eq!(names("/%2E"), Err(BadPath::Dots));
        assert_eq!(names("/rooms%2f..%2fetc"), Err(BadPath::Separator));
        assert_eq!(names("/rooms%2F"), Err(BadPath::Separator));
        assert_eq!(names("/a%5cb"), Err(BadPath::Separator));
        assert_eq!(names("/a%00"), Err(BadPath::Separator));
        assert_eq!(names("/a\\b"), Err(BadPath::Separator));
        assert_eq!(names("/a%"), Err(BadPath::Encoding));
        assert_eq!(names("/a%2"), Err(BadPath::Encoding));
        assert_eq!(names("/a%zz"), Err(BadPath::Encoding));
        assert_eq!(names("/%ff"), Err(BadPath::Encoding));
    }

    proptest! {
        /// Whatever the input, a name that comes out is never a step up or sideways.
        #[test]
        fn no_name_escapes(raw in "/[a-zA-Z0-9%./\\\\]{0,24}") {
            if let Ok((names, _)) = names(&raw) {
                for n in names {
                    prop_assert!(n != "." && n != ".." && !n.contains(['/', '\\', '\0']) && !n.is_empty());
                }
            }
        }
    }
}
