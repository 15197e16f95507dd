//! The mount-helper form of the command line: what `/etc/fstab`, `mount` and `mount -a`
//! run.
//!
//! For an fstab line of type `fuse.twilio-media-fs`, `mount` starts `mount.fuse3`, which
//! runs `twilio-media-fs SOURCE MOUNTPOINT -o OPTIONS` through `/bin/sh` (with the
//! default `PATH`: the program must be in `/usr/local/sbin`, `/usr/bin` or the like).
//! `mount` always passes `ro` or `rw` first; `mount.fuse3` drops `user`, `nofail`,
//! `auto`, `noauto`, `_netdev` and appends `dev,suid` unless `nodev`/`nosuid` were given.
//!
//! [`rewrite`] turns that form into the ordinary `twilio-media-fs mount MOUNTPOINT
//! --flag …`, so that clap parses it like any other command line and the background
//! mount re-executes itself the same way; every other command line passes through
//! unchanged. [`MountOptions::parse`] maps each option to its `mount` flag, ignores the
//! generic ones that `mount`, the kernel or systemd handle, and rejects the rest with a
//! message naming the option. Secrets never appear here: credentials come from the file
//! `credentials=` names.
//!
//! Pure: no I/O. The values are checked with the same parsers as the flags
//! ([`crate::cli`]). It must not import the clap definitions themselves: which words are
//! subcommands comes in as a predicate (from `cmd::argv`), so that `cli` and this module
//! never import each other.

use std::ffi::OsString;
use std::fmt;

/// Options that take a value, as `name=value`, and the `mount` flag each becomes.
const VALUE_OPTIONS: &[(&str, &str, &str)] = &[
    // (option, flag, what the value is)
    ("key", "--key", "private key file(s), colon-separated"),
    ("credentials", "--credentials", "credentials file"),
    ("cache_size", "--cache-size", "size such as 512MiB"),
    ("window", "--window", "size such as 1MiB"),
    ("refresh", "--refresh", "duration such as 60s"),
    (
        "listing_deadline",
        "--listing-deadline",
        "duration such as 10m",
    ),
    ("room", "--room", "room or call SID(s), colon-separated"),
    ("since", "--since", "date such as 2026-01-31"),
    ("uid", "--uid", "user id"),
    ("gid", "--gid", "group id"),
    ("api_url", "--api-url", "URL"),
    ("voice_api_url", "--voice-api-url", "URL"),
    ("timeout", "--timeout", "duration such as 30s"),
    ("retry_budget", "--retry-budget", "duration such as 30s"),
    ("min_rate", "--min-rate", "bytes per second such as 32KiB"),
    ("fsname", "--fsname", "name"),
    ("metadata_cache", "--metadata-cache", "directory"),
];

/// Options without a value, and the `mount` flag each becomes.
const SWITCH_OPTIONS: &[(&str, &str)] = &[
    ("allow_other", "--allow-other"),
    ("exact_sizes", "--exact-sizes"),
    ("no_metadata_cache", "--no-metadata-cache"),
    ("require_encrypted", "--require-encrypted"),
];

/// Options that `mount`, the kernel, `mount.fuse3` or systemd handle, accepted and
/// ignored: the mount is always read-only, `nodev` and `nosuid` whatever they say.
const IGNORED: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "_netdev",
    "nofail",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "sync",
    "async",
    "dirsync",
    "silent",
    "loud",
    // Always on: the kernel checks the 0444/0555 modes.
    "default_permissions",
];

/// A mount option that cannot be used, or a helper command line that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError(pub String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OptionError {}

fn err(msg: impl Into<String>) -> OptionError {
    OptionError(msg.into())
}

/// The `-o` options of one mount, as `mount` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// The flags of [`SWITCH_OPTIONS`] given, each once, in the order given.
    pub switches: Vec<&'static str>,
    pub keys: Vec<String>,
    pub rooms: Vec<String>,
    /// Single-valued options: `(flag, value)`, the last one given wins (as with `mount`).
    pub values: Vec<(&'static str, String)>,
}

impl MountOptions {
    /// Parses a comma-separated option list such as
    /// `ro,_netdev,allow_other,key=/etc/k.pem,credentials=/etc/twilio-media-fs/credentials`.
    pub fn parse(options: &str) -> Result<Self, OptionError> {
        let mut out = MountOptions::default();
        for option in options.split(',').filter(|o| !o.is_empty()) {
            out.add(option)?;
        }
        Ok(out)
    }

    fn add(&mut self, option: &str) -> Result<(), OptionError> {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (option, None),
        };
        if name.starts_with("x-") || name == "comment" {
            return Ok(()); // for systemd and other userspace tools
        }
        match (name, value) {
            ("ro", None) => return Ok(()),
            ("rw", None) => {
                return Err(err(
                    "twilio-media-fs mounts are read-only: write `ro` in the options \
                     (`mount` passes `rw` when neither is given)",
                ));
            }
            ("remount", None) => {
                return Err(err(
                    "remount is not supported: unmount, then mount again with the new options",
                ));
            }
            (n, None) if IGNORED.contains(&n) => return Ok(()),
            _ => {}
        }
        if let (Some(&(_, flag)), None) = (SWITCH_OPTIONS.iter().find(|(o, _)| *o == name), value) {
            if !self.switches.contains(&flag) {
                self.switches.push(flag);
            }
            return Ok(());
        }
        let Some(&(_, flag, what)) = VALUE_OPTIONS.iter().find(|(o, ..)| *o == name) else {
            return Err(unknown(option));
        };
        let value = match value {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Err(err(format!(
                    "mount option {name} needs a value: {name}=<{what}>"
                )));
            }
        };
        check_value(name, value)?;
        match name {
            "key" | "room" => {
                let parts: Vec<&str> = value.split(':').collect();
                if parts.iter().any(|p| p.is_empty()) {
                    return Err(err(format!(
                        "mount option {name}={value}: an empty item between colons"
                    )));
                }
                let list = if name == "key" {
                    &mut self.keys
                } else {
                    &mut self.rooms
                };
                list.extend(parts.into_iter().map(str::to_owned));
            }
            _ => {
                self.values.retain(|(f, _)| *f != flag);
                self.values.push((flag, value.to_owned()));
            }
        }
        Ok(())
    }

    /// The `mount` flags these options stand for.
    pub fn flags(&self) -> Vec<String> {
        let mut out: Vec<String> = self.switches.iter().map(|f| (*f).to_owned()).collect();
        for key in &self.keys {
            out.extend(["--key".to_owned(), key.clone()]);
        }
        for room in &self.rooms {
            out.extend(["--room".to_owned(), room.clone()]);
        }
        for (flag, value) in &self.values {
            out.extend([(*flag).to_owned(), value.clone()]);
        }
        out
    }
}

fn unknown(option: &str) -> OptionError {
    let known: Vec<String> = std::iter::once("ro".to_owned())
        .chain(SWITCH_OPTIONS.iter().map(|(o, _)| (*o).to_owned()))
        .chain(VALUE_OPTIONS.iter().map(|(o, ..)| format!("{o}=")))
        .collect();
    err(format!(
        "unknown mount option {option:?}: twilio-media-fs takes {} (and ignores the generic \
         ones such as _netdev, nofail, noauto, x-systemd.*); see man twilio-media-fs",
        known.join(", ")
    ))
}

/// Checks a value with the parser of the flag it becomes, so the message names the
/// fstab option rather than a flag the user never wrote.
fn check_value(name: &str, value: &str) -> Result<(), OptionError> {
    let checked = match name {
        "cache_size" | "min_rate" => crate::cli::parse_size(value).map(|_| ()),
        "window" => crate::cli::parse_window(value).map(|_| ()),
        "refresh" | "retry_budget" => crate::cli::parse_duration(value).map(|_| ()),
        "timeout" | "listing_deadline" => crate::cli::parse_timeout(value).map(|_| ()),
        "since" => crate::cli::parse_date(value).map(|_| ()),
        "uid" | "gid" => value
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| "not a number".to_owned()),
        "room" => value
            .split(':')
            .all(|r| {
                r.is_empty()
                    || crate::names::is_sid(r) && (r.starts_with("RM") || r.starts_with("CA"))
            })
            .then_some(())
            .ok_or_else(|| "expected room (RM…) or call (CA…) SIDs".to_owned()),
        _ => Ok(()),
    };
    checked.map_err(|why| err(format!("mount option {name}={value}: {why}")))
}

/// The command line `twilio-media-fs` should parse: the mount-helper form
/// (`PROGRAM SOURCE MOUNTPOINT -o OPTIONS`, see the module docs) rewritten to
/// `PROGRAM mount MOUNTPOINT --fsname SOURCE FLAGS…`, anything else unchanged.
///
/// The helper form is recognised by its first argument, which is not a subcommand
/// (`is_subcommand`) nor a flag, and by an `-o` among the arguments; so a mistyped
/// subcommand still gets clap's "unrecognized subcommand" message, never a mount.
pub fn rewrite(
    args: Vec<OsString>,
    is_subcommand: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, OptionError> {
    let first = args.get(1).map(|a| a.to_string_lossy());
    let helper_form = match &first {
        Some(a) => !a.starts_with('-') && !is_subcommand(a) && args.iter().any(|a| a == "-o"),
        None => false,
    };
    if !helper_form {
        return Ok(args);
    }
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| err(format!("{arg:?} is not valid UTF-8")))?;
        if text == "-o" {
            let opts = rest
                .next()
                .ok_or_else(|| err("-o needs an option list"))?
                .to_str()
                .ok_or_else(|| err("the mount options are not valid UTF-8"))?;
            options.push(opts.to_owned());
        } else if text.starts_with('-') {
            return Err(err(format!(
                "unexpected argument {text:?}: as a mount helper, twilio-media-fs takes \
                 SOURCE MOUNTPOINT -o OPTIONS"
            )));
        } else {
            positional.push(text.to_owned());
        }
    }
    // mount.fuse3 leaves out an empty source.
    let (source, mountpoint) = match positional.as_slice() {
        [mountpoint] => ("twilio-media-fs".to_owned(), mountpoint.clone()),
        [source, mountpoint] => (source.clone(), mountpoint.clone()),
        _ => {
            return Err(err(format!(
                "as a mount helper, twilio-media-fs takes SOURCE MOUNTPOINT -o OPTIONS, \
                 not {} arguments",
                positional.len()
            )));
        }
    };
    if mountpoint.starts_with("/dev/fd/") {
        return Err(err(
            "drop_privileges (a mount point of /dev/fd/N) is not supported: remove it from \
             the options",
        ));
    }
    let parsed = MountOptions::parse(&options.join(","))?;
    let mut out: Vec<OsString> = vec![args[0].clone(), "mount".into(), mountpoint.into()];
    // SOURCE names the mount in /proc/mounts (`mount -a` compares it), unless fsname= did.
    if !parsed.values.iter().any(|(flag, _)| *flag == "--fsname") {
        out.extend(["--fsname".into(), source.into()]);
    }
    out.extend(parsed.flags().into_iter().map(OsString::from));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use proptest::prelude::*;

    use super::*;
    use crate::cli::{Cli, Command, MountArgs};

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn is_sub(s: &str) -> bool {
        ["mount", "ls", "get", "doctor"].contains(&s)
    }

    fn mount_args(args: Vec<OsString>) -> MountArgs {
        match Cli::try_parse_from(args).expect("clap accepts it").command {
            Command::Mount(m) => m,
            other => panic!("not a mount: {other:?}"),
        }
    }

    const ROOM: &str = "RM0123456789abcdef0123456789abcdef";

    #[test]
    fn the_issue_fstab_line() {
        let args = rewrite(
            os(&[
                "twilio-media-fs",
                "twilio-media-fs",
                "/mnt/twilio",
                "-o",
                "ro,allow_other,key=/etc/twilio-media-fs/key.pem,\
                 credentials=/etc/twilio-media-fs/credentials,dev,suid",
            ]),
            is_sub,
        )
        .unwrap();
        let m = mount_args(args);
        assert_eq!(m.mountpoint.to_str(), Some("/mnt/twilio"));
        assert!(m.allow_other);
        assert_eq!(
            m.keys.paths,
            vec![std::path::PathBuf::from("/etc/twilio-media-fs/key.pem")]
        );
        assert_eq!(
            m.api.credentials.as_deref(),
            Some(std::path::Path::new("/etc/twilio-media-fs/credentials"))
        );
        assert_eq!(m.fsname, "twilio-media-fs");
        assert!(!m.foreground);
    }

    #[test]
    fn every_value_option_maps_to_its_flag() {
        let args = rewrite(
            os(&[
                "p",
                "acct",
                "/m",
                "-o",
                &format!(
                    "ro,key=/a.pem:/b.pem,key=/c.pem,cache_size=1GiB,window=64KiB,refresh=5m,\
                     room={ROOM},since=2026-01-31,uid=1000,gid=100,api_url=http://127.0.0.1:9/x,\
                     fsname=other,timeout=500ms,retry_budget=5s,min_rate=1MiB,metadata_cache=/var/cache/t"
                ),
            ]),
            is_sub,
        )
        .unwrap();
        let m = mount_args(args);
        let keys: Vec<_> = m.keys.paths.iter().map(|k| k.to_str().unwrap()).collect();
        assert_eq!(keys, ["/a.pem", "/b.pem", "/c.pem"]);
        assert_eq!(m.fs.cache_size, 1 << 30);
        assert_eq!(m.fs.window, 64 << 10);
        assert_eq!(m.fs.refresh, std::time::Duration::from_secs(300));
        assert_eq!(m.fs.rooms, [ROOM]);
        assert_eq!(m.fs.since.as_deref(), Some("2026-01-31T00:00:00Z"));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
        assert_eq!(m.api.api_url, "http://127.0.0.1:9/x");
        assert_eq!(m.fsname, "other", "fsname= wins over SOURCE");
        assert_eq!(m.api.retry.timeout, std::time::Duration::from_millis(500));
        assert_eq!(m.api.retry.retry_budget, std::time::Duration::from_secs(5));
        assert_eq!(m.api.retry.min_rate, 1 << 20);
        assert_eq!(
            m.fs.metadata_cache.as_deref(),
            Some(std::path::Path::new("/var/cache/t"))
        );
        assert!(!m.allow_other && !m.fs.exact_sizes && !m.fs.no_metadata_cache);
    }

    #[test]
    fn every_switch_maps_to_its_flag() {
        let options = "ro,exact_sizes,no_metadata_cache,allow_other,exact_sizes";
        let m = mount_args(rewrite(os(&["p", "s", "/m", "-o", options]), is_sub).unwrap());
        assert!(m.allow_other && m.fs.exact_sizes && m.fs.no_metadata_cache);
        for bad in ["exact_sizes=1", "no_metadata_cache=yes"] {
            let e = MountOptions::parse(bad).unwrap_err().0;
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("exact_sizes"),
                "{e}"
            );
        }
        let both = "ro,no_metadata_cache,metadata_cache=/d";
        assert!(
            Cli::try_parse_from(rewrite(os(&["p", "s", "/m", "-o", both]), is_sub).unwrap())
                .is_err(),
            "they conflict, as the flags do"
        );
    }

    #[test]
    fn generic_options_are_ignored() {
        let o = MountOptions::parse(
            "ro,defaults,auto,noauto,_netdev,nofail,user,users,nouser,owner,group,dev,nodev,\
             suid,nosuid,exec,noexec,noatime,relatime,strictatime,nodiratime,lazytime,async,\
             sync,x-systemd.automount,x-systemd.mount-timeout=30,x-gvfs-hide,comment=hi,\
             default_permissions",
        )
        .unwrap();
        assert_eq!(o, MountOptions::default());
        assert!(o.flags().is_empty());
    }

    #[test]
    fn rw_remount_and_unknown_options_are_refused_by_name() {
        let e = MountOptions::parse("rw,allow_other").unwrap_err().0;
        assert!(e.contains("read-only") && e.contains("`ro`"), "{e}");
        let e = MountOptions::parse("ro,remount").unwrap_err().0;
        assert!(e.contains("remount"), "{e}");
        for bad in [
            "allow_root",
            "cache=1",
            "keys=/a",
            "auto_unmount",
            "ro=1",
            "allow_other=yes",
        ] {
            let e = MountOptions::parse(bad).unwrap_err().0;
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
            assert!(e.contains("key=") && e.contains("credentials="), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_option() {
        for (bad, needle) in [
            ("cache_size=lots", "cache_size=lots"),
            ("window=17", "window=17"),
            ("refresh=soon", "refresh=soon"),
            ("timeout=0s", "timeout=0s"),
            ("retry_budget=forever", "retry_budget=forever"),
            ("since=yesterday", "since=yesterday"),
            ("uid=root", "uid=root"),
            ("room=RX1", "room=RX1"),
            ("key=", "key needs a value"),
            ("key", "key needs a value"),
            ("credentials", "credentials needs a value"),
            ("key=/a::/b", "empty item"),
        ] {
            let e = MountOptions::parse(bad).unwrap_err().0;
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn other_command_lines_pass_through() {
        for args in [
            os(&["p", "mount", "/m", "-k", "k.pem"]),
            os(&["p", "get", "RTx", "-o", "/tmp/x"]),
            os(&["p", "--help"]),
            os(&["p", "-v", "ls"]),
            os(&["p"]),
            // A typo without -o: clap says "unrecognized subcommand", nothing mounts.
            os(&["p", "mout", "/mnt"]),
        ] {
            assert_eq!(rewrite(args.clone(), is_sub).unwrap(), args);
        }
    }

    #[test]
    fn helper_shapes() {
        // mount.fuse3 leaves out an empty source.
        let a = rewrite(os(&["p", "/m", "-o", "ro"]), is_sub).unwrap();
        assert_eq!(a, os(&["p", "mount", "/m", "--fsname", "twilio-media-fs"]));
        // Several -o are one list.
        let a = rewrite(
            os(&["p", "s", "/m", "-o", "ro", "-o", "allow_other"]),
            is_sub,
        )
        .unwrap();
        assert_eq!(
            a,
            os(&["p", "mount", "/m", "--fsname", "s", "--allow-other"])
        );
        for (args, needle) in [
            (os(&["p", "s", "/m", "-o"]), "-o needs"),
            (
                os(&["p", "s", "/m", "-o", "ro", "-n"]),
                "unexpected argument \"-n\"",
            ),
            (os(&["p", "s", "/m", "x", "-o", "ro"]), "not 3 arguments"),
            (os(&["p", "s", "/dev/fd/3", "-o", "ro"]), "drop_privileges"),
        ] {
            let e = rewrite(args, is_sub).unwrap_err().0;
            assert!(e.contains(needle), "{e}");
        }
    }

    /// One option with a valid value, and what it must become.
    fn option() -> impl Strategy<Value = (String, Vec<String>)> {
        let path = "/[a-z]{1,8}(/[a-z0-9._-]{1,8}){0,2}";
        prop_oneof![
            Just(("ro".to_owned(), vec![])),
            Just(("_netdev".to_owned(), vec![])),
            Just(("nofail".to_owned(), vec![])),
            Just(("x-systemd.automount".to_owned(), vec![])),
            Just(("allow_other".to_owned(), vec!["--allow-other".to_owned()])),
            Just(("exact_sizes".to_owned(), vec!["--exact-sizes".to_owned()])),
            Just((
                "require_encrypted".to_owned(),
                vec!["--require-encrypted".to_owned()]
            )),
            proptest::collection::vec(path, 1..3).prop_map(|ks| (
                format!("key={}", ks.join(":")),
                ks.iter()
                    .flat_map(|k| ["--key".to_owned(), k.clone()])
                    .collect()
            )),
            path.prop_map(|p| (
                format!("credentials={p}"),
                vec!["--credentials".to_owned(), p]
            )),
            (1u64..4096, prop_oneof![Just("MiB"), Just("KiB"), Just("")]).prop_map(|(n, u)| (
                format!("cache_size={n}{u}"),
                vec!["--cache-size".to_owned(), format!("{n}{u}")]
            )),
            (0u32..100_000)
                .prop_map(|n| (format!("uid={n}"), vec!["--uid".to_owned(), n.to_string()])),
        ]
    }

    proptest! {
        /// Any list of valid options becomes flags that clap accepts, with each option's
        /// value where its flag puts it (single-valued ones: the last given wins).
        #[test]
        fn valid_option_lists_parse(opts in proptest::collection::vec(option(), 0..8)) {
            let list: Vec<&str> = opts.iter().map(|(o, _)| o.as_str()).collect();
            let joined = list.join(",");
            let args = rewrite(os(&["p", "src", "/m", "-o", &joined]), is_sub).unwrap();
            let m = mount_args(args);
            let expected_keys: Vec<String> = opts.iter()
                .flat_map(|(_, f)| f.chunks(2).filter(|c| c[0] == "--key").map(|c| c[1].clone()))
                .collect();
            let keys: Vec<String> = m.keys.paths.iter().map(|k| k.to_string_lossy().into_owned()).collect();
            prop_assert_eq!(keys, expected_keys);
            prop_assert_eq!(m.allow_other, list.contains(&"allow_other"));
            prop_assert_eq!(m.fs.exact_sizes, list.contains(&"exact_sizes"));
            prop_assert_eq!(m.fs.require_encrypted, list.contains(&"require_encrypted"));
            let last = |flag: &str| opts.iter().rev()
                .find_map(|(_, f)| (f.first().map(String::as_str) == Some(flag)).then(|| f[1].clone()));
            prop_assert_eq!(
                m.api.credentials.map(|p| p.to_string_lossy().into_owned()),
                last("--credentials")
            );
            prop_assert_eq!(m.uid.map(|u| u.to_string()), last("--uid"));
            if let Some(size) = last("--cache-size") {
                prop_assert_eq!(m.fs.cache_size, crate::cli::parse_size(&size).unwrap());
            }
        }

        /// Anything that is not a known option is refused, naming it; nothing panics.
        #[test]
        fn unknown_options_are_refused(name in "[a-z_]{1,12}", value in proptest::option::of("[ -~]{0,12}")) {
            let known = VALUE_OPTIONS.iter().any(|(o, ..)| *o == name)
                || SWITCH_OPTIONS.iter().any(|(o, _)| *o == name)
                || IGNORED.contains(&name.as_str())
                || ["ro", "rw", "remount", "comment"].contains(&name.as_str());
            prop_assume!(!known);
            let value = value.map(|v| v.replace(',', ""));
            let option = match &value { Some(v) => format!("{name}={v}"), None => name.clone() };
            let e = MountOptions::parse(&option).unwrap_err().0;
            prop_assert!(e.contains(&format!("{option:?}")), "{}", e);
        }

        /// Whatever the arguments, rewriting never panics, and the helper form only
        /// ever turns into a `mount` command line.
        #[test]
        fn rewrite_never_panics(args in proptest::collection::vec("[ -~]{0,16}", 0..6)) {
            let mut all = vec!["p".to_owned()];
            all.extend(args);
            let os_args: Vec<OsString> = all.iter().map(OsString::from).collect();
            if let Ok(out) = rewrite(os_args.clone(), is_sub) && out != os_args {
                prop_assert_eq!(out[1].to_str(), Some("mount"));
            }
        }
    }
}
