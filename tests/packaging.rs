//! What a package installs, made from this build: the man pages (rendered by `man`,
//! naming every subcommand), the shell completions (parsed by bash, zsh and fish, and
//! completing for real in bash and fish), and the Debian package `packaging/build-deb`
//! makes (its files and dependencies per `dpkg-deb`, unpacked and run, and installed with
//! `dpkg -i` then purged when it is not installed already).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use common::*;
use twilio_media_fs::cli::Cli;

/// The subcommands a user types (not hidden ones, not `help`).
fn subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect()
}

fn generate(what: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let out = dir.path().join(what);
    run_ok(bin().args(["generate", what]).arg(&out));
    (dir, out)
}

/// A man page as `man` shows it, as plain text.
fn render(page: &Path) -> String {
    let out = run_ok(
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "")
            .env("PAGER", "cat")
            .env("MANPAGER", "cat"),
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn man_pages_render_and_name_every_subcommand() {
    if !require_tool("man") || !require_tool("groff") {
        return;
    }
    let (_dir, man) = generate("man");
    let subs = subcommands();
    assert!(
        subs.len() >= 7 && subs.contains(&"doctor".to_owned()),
        "{subs:?}"
    );
    let mut files: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = subs
        .iter()
        .map(|s| format!("twilio-media-fs-{s}.1"))
        .chain(["twilio-media-fs.1".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "one page per subcommand, none for hidden ones"
    );

    let main = render(&man.join("twilio-media-fs.1"));
    for sub in &subs {
        assert!(
            main.contains(&format!("twilio-media-fs-{sub}(1)")),
            "{sub} not in:\n{main}"
        );
    }
    for topic in [
        "fuse.twilio-media-fs",
        "credentials=",
        "systemd-escape",
        ".stats",
        "RUST_LOG",
    ] {
        assert!(main.contains(topic), "{topic} not in:\n{main}");
    }
    let mount = render(&man.join("twilio-media-fs-mount.1"));
    for flag in ["--foreground", "--credentials", "--fsname", "--cache-size"] {
        assert!(mount.contains(flag), "{flag} not in:\n{mount}");
    }
    // groff finds nothing to warn about in any page.
    for f in &files {
        // -k: UTF-8 input, through preconv, as man does it; every warning but the
        // fstab example line being too long to justify.
        let out = run(Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-Wbreak", "-z"])
            .arg(man.join(f)));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn completions_parse_and_complete_in_bash_zsh_and_fish() {
    let (_dir, dir) = generate("completions");
    let bash = dir.join("twilio-media-fs.bash");
    let zsh = dir.join("_twilio-media-fs");
    let fish = dir.join("twilio-media-fs.fish");

    run_ok(Command::new("bash").arg("-n").arg(&bash));
    // bash: what `twilio-media-fs <TAB>` and `twilio-media-fs mount --ca<TAB>` offer.
    let complete = |words: &str| {
        // The function `complete -p` names, called as bash calls it: (command, word,
        // previous word), with COMP_WORDS/COMP_CWORD set.
        let script = format!(
            "source {}; f=$(complete -p twilio-media-fs | sed 's/.*-F \\([^ ]*\\).*/\\1/'); \
             COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             \"$f\" twilio-media-fs \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display()
        );
        String::from_utf8(run_ok(Command::new("bash").arg("-c").arg(script))).unwrap()
    };
    let first = complete("twilio-media-fs ''");
    for sub in subcommands() {
        assert!(
            first.lines().any(|l| l == sub),
            "{sub} not offered: {first}"
        );
    }
    let flags = complete("twilio-media-fs mount --ca");
    assert_eq!(flags.trim(), "--cache-size", "{flags}");

    if require_tool("zsh") {
        run_ok(Command::new("zsh").arg("-n").arg(&zsh));
    }
    if require_tool("fish") {
        run_ok(Command::new("fish").arg("-n").arg(&fish));
        let offered = String::from_utf8(run_ok(Command::new("fish").arg("-c").arg(format!(
            "source {}; complete -C 'twilio-media-fs do'",
            fish.display()
        ))))
        .unwrap();
        assert!(
            offered.lines().any(|l| l.starts_with("doctor")),
            "{offered}"
        );
    }
}

/// `dpkg -i` of the package, purged on drop (even when the test fails).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "twilio-media-fs"])
            .output();
    }
}

fn installed_already() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "twilio-media-fs"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"))
}

#[test]
fn the_debian_package_builds_installs_and_runs() {
    for tool in ["cargo-deb", "dpkg-deb", "dpkg", "man"] {
        if !require_tool(tool) {
            return;
        }
    }
    // The debug build the tests use, packaged as a release is (build-deb without BIN
    // does `cargo build --release` first, which a test cannot afford).
    let out_dir = tempdir();
    let started = std::time::Instant::now();
    let out = run(
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb"))
            .env("BIN", env!("CARGO_BIN_EXE_twilio-media-fs"))
            .env_remove("CARGO_TARGET_DIR")
            .arg("--fast")
            .arg("-o")
            .arg(out_dir.path()),
    );
    assert!(
        out.status.success(),
        "build-deb: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    println!(
        "{}: {} bytes in {:.1} s",
        deb.display(),
        std::fs::metadata(&deb).unwrap().len(),
        started.elapsed().as_secs_f64()
    );

    // Its files, with their modes.
    let listing = String::from_utf8(run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb))).unwrap();
    let mode_of = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(".{path}")))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{path} not in the package:\n{listing}"))
    };
    assert_eq!(mode_of("/usr/bin/twilio-media-fs"), "-rwxr-xr-x");
    assert_eq!(
        mode_of("/usr/share/man/man1/twilio-media-fs.1.gz"),
        "-rw-r--r--"
    );
    for sub in subcommands() {
        mode_of(&format!("/usr/share/man/man1/twilio-media-fs-{sub}.1.gz"));
    }
    mode_of("/usr/share/bash-completion/completions/twilio-media-fs");
    mode_of("/usr/share/zsh/vendor-completions/_twilio-media-fs");
    mode_of("/usr/share/fish/vendor_completions.d/twilio-media-fs.fish");
    mode_of("/lib/systemd/system/twilio-media-fs@.service");
    mode_of("/lib/systemd/system/twilio-media-fs-serve.service");
    mode_of("/usr/share/doc/twilio-media-fs/examples/fstab");
    mode_of("/usr/share/doc/twilio-media-fs/examples/serve/nginx.conf");
    mode_of("/usr/share/doc/twilio-media-fs/examples/serve/kubernetes.yaml");
    assert_eq!(
        mode_of("/etc/twilio-media-fs/credentials.example"),
        "-rw-------",
        "a credentials file, even an example, is root's only"
    );

    // Its control fields.
    let field = |name: &str| {
        let out = run_ok(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name));
        String::from_utf8(out).unwrap().trim().to_owned()
    };
    assert_eq!(field("Package"), "twilio-media-fs");
    assert_eq!(field("Version"), format!("{}-1", env!("CARGO_PKG_VERSION")));
    let depends = field("Depends");
    assert!(depends.split(", ").any(|d| d == "fuse3"), "{depends}");
    assert!(depends.contains("libc6"), "{depends}");
    let info = String::from_utf8(run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb))).unwrap();
    assert!(
        info.contains("conffiles"),
        "/etc files are conffiles:\n{info}"
    );

    // Unpacked into a scratch root, the binary runs and the man page shows.
    let root = tempdir();
    run_ok(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));
    let version =
        run_ok(Command::new(root.path().join("usr/bin/twilio-media-fs")).arg("--version"));
    assert_eq!(
        String::from_utf8(version).unwrap().trim(),
        format!("twilio-media-fs {}", env!("CARGO_PKG_VERSION"))
    );
    let page = render(
        &root
            .path()
            .join("usr/share/man/man1/twilio-media-fs-doctor.1.gz"),
    );
    assert!(page.contains("doctor"), "{page}");

    // Installed for real, when that clobbers nothing; purged afterwards.
    if installed_already() {
        eprintln!("SKIPPED dpkg -i: twilio-media-fs is installed on this machine already");
        return;
    }
    let _installed = Installed;
    let out = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(
        out.status.success(),
        "dpkg -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = run_ok(Command::new("/usr/bin/twilio-media-fs").arg("--version"));
    assert!(
        String::from_utf8(version)
            .unwrap()
            .contains(env!("CARGO_PKG_VERSION"))
    );
    let files =
        String::from_utf8(run_ok(Command::new("dpkg").args(["-L", "twilio-media-fs"]))).unwrap();
    assert!(
        files
            .lines()
            .any(|l| l == "/lib/systemd/system/twilio-media-fs@.service"),
        "{files}"
    );
    let conf = std::fs::metadata("/etc/twilio-media-fs/credentials.example").unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&conf.permissions()) & 0o777,
        0o600
    );
    run_ok(Command::new("dpkg").args(["--purge", "twilio-media-fs"]));
    assert!(!Path::new("/usr/bin/twilio-media-fs").exists(), "purged");
    assert!(
        !Path::new("/etc/twilio-media-fs/credentials.example").exists(),
        "purged"
    );
}
