//! The emulator's own hostile modes (`emulator --hostile MODE`, issue 16), each met by
//! the real program: the emulator runs in process with one mode
//! (`EmulatorConfig::hostile`), and `ls`, `get`, `doctor` or a real mount run against
//! it with their address space limited to 1 GiB ([`limited`]). Each test asserts the
//! bounded, clean behaviour the program has (the same as `tests/hostile*.rs`, where a
//! proxy plays the hostile server) and prints its time and peak RSS (`--nocapture`).
//! The last test runs the `emulator` binary itself with a mode.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::hostile::*;
use common::mount::*;
use common::*;
use twilio_media_fs::emulator::hostile::Hostile;
use twilio_media_fs::emulator::{EmulatorConfig, ObjectInfo, RunningEmulator, spawn};

/// The emulator of [`emulator_config`] with `modes`.
async fn hostile_emulator(modes: &[Hostile]) -> RunningEmulator {
    spawn(EmulatorConfig {
        hostile: modes.to_vec(),
        ..emulator_config()
    })
    .await
    .unwrap()
}

/// A completed object of `kind` (`RT` or `CJ`) with stored plaintext.
fn an_object(emu: &RunningEmulator, prefix: &str) -> ObjectInfo {
    emu.emulator
        .objects()
        .into_iter()
        .find(|o| o.status == "completed" && o.sid.starts_with(prefix) && o.plaintext.is_some())
        .unwrap()
}

/// `get SID -k KEY -o DEST --retry-budget 2s`, limited to 1 GiB.
fn get_cmd(api: &str, sid: &str, dest: &Path) -> Command {
    let mut cmd = limited(cli_at(api));
    cmd.args(["get", "--retry-budget", "2s", sid, "-k"])
        .arg(&keys().pem[0])
        .arg("-o")
        .arg(dest);
    cmd
}

/// `ls KIND`, limited to 1 GiB.
fn ls_cmd(api: &str, kind: &str) -> Command {
    let mut cmd = limited(cli_at(api));
    cmd.args(["ls", kind]);
    cmd
}

/// The SIDs (first column) of `ls` output, its header left out.
fn listed_sids(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `endless-api-body`: `ls recordings` fails with the 16 MiB bound; compositions,
/// which the mode leaves alone, still list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_api_body_fails_ls_with_the_bound() {
    let emu = hostile_emulator(&[Hostile::EndlessApiBody]).await;
    let ran = timed(ls_cmd(&emu.url, "recordings")).await;
    println!("endless-api-body, ls recordings: {ran}");
    let err = stderr(&ran.out);
    assert_eq!(ran.out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the answer is larger than 16 MiB, the most read of one API answer"),
        "{err}"
    );
    assert!(ran.out.stdout.is_empty());
    assert!(
        ran.took < Duration::from_secs(10),
        "{}",
        ran.took.as_secs_f64()
    );
    let ran = timed(ls_cmd(&emu.url, "compositions")).await;
    assert_eq!(ran.out.status.code(), Some(0), "{}", stderr(&ran.out));
    assert!(!listed_sids(&ran.out).is_empty());
}

/// `endless-api-body` under a mount: the recordings directory is EIO, saying why; the
/// mount stays up and a composition reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_api_body_leaves_a_mount_up() {
    let emu = hostile_emulator(&[Hostile::EndlessApiBody]).await;
    let m = Mount::new();
    let mut cmd = m.command(&emu.url, &[&keys().pem[0]]);
    cmd.args(["--foreground", "--retry-budget", "2s", "--timeout", "5s"]);
    let mut m = m.spawn(limited(cmd)).await;
    let dir = m.path.join("recordings");
    let started = Instant::now();
    let err =
        blocking(move || std::fs::read_dir(dir).and_then(|d| d.collect::<Result<Vec<_>, _>>()))
            .await
            .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(m.log().contains("larger than 16 MiB"), "{}", m.log());
    let o = an_object(&emu, "CJ");
    let path = m.file(&o);
    let got = blocking(move || std::fs::read(path)).await.unwrap();
    assert_eq!(sha256(&got), sha256(o.plaintext.as_ref().unwrap()));
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    println!(
        "endless-api-body, a mount's recordings: EIO in {took:?}, mount peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    assert!(m.alive(), "{}", m.log());
    m.unmount().await;
}

/// `endless-storage-error`: `get` fails on the 403 and leaves no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_storage_error_fails_get_on_the_403() {
    let emu = hostile_emulator(&[Hostile::EndlessStorageError]).await;
    let sid = a_recording(&emu);
    let dir = tempdir();
    let ran = timed(get_cmd(&emu.url, &sid, &dir.path().join("out.mka"))).await;
    println!("endless-storage-error, get: {ran}");
    let err = stderr(&ran.out);
    assert_eq!(ran.out.status.code(), Some(1), "{err}");
    assert!(err.contains("403"), "{err}");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    assert!(
        ran.took < Duration::from_secs(20),
        "{}",
        ran.took.as_secs_f64()
    );
}

/// `slow-pages`: a listing of two pages takes the second page's 2 s and lists every
/// recording; a mount whose `--listing-deadline` is 1 s gives that listing up, saying
/// so, and stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_pages_slow_ls_and_meet_a_mounts_deadline() {
    let emu = spawn(EmulatorConfig {
        hostile: vec![Hostile::SlowPages],
        extra_recordings: 120,
        ..emulator_config()
    })
    .await
    .unwrap();
    let want = emu
        .emulator
        .objects()
        .iter()
        .filter(|o| o.sid.starts_with("RT"))
        .count();
    assert!(want > 100, "two pages of 100");
    let ran = timed(ls_cmd(&emu.url, "recordings")).await;
    println!("slow-pages, ls of {want} recordings (2 pages): {ran}");
    assert_eq!(ran.out.status.code(), Some(0), "{}", stderr(&ran.out));
    assert_eq!(listed_sids(&ran.out).len(), want);
    assert!(ran.took >= Duration::from_secs(2), "{:?}", ran.took);
    assert!(ran.took < Duration::from_secs(10), "{:?}", ran.took);

    let m = Mount::new();
    let mut cmd = m.command(&emu.url, &[&keys().pem[0]]);
    cmd.args(["--foreground", "--listing-deadline", "1s"])
        .args(["--retry-budget", "2s", "--timeout", "2s"]);
    let mut m = m.spawn(limited(cmd)).await;
    let dir = m.path.join("recordings");
    let started = Instant::now();
    let listed = blocking(move || {
        std::fs::read_dir(dir).and_then(|d| {
            d.map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
    })
    .await;
    let took = started.elapsed();
    let said = "the listing took longer than 1s";
    let waited = Instant::now();
    while !m.log().contains(said) && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    println!(
        "slow-pages, a mount's first listing with --listing-deadline 1s: {listed:?} in \
         {took:?}, mount peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    assert!(m.log().contains(said), "{}", m.log());
    let err = listed.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(took < Duration::from_secs(7), "{took:?}");
    assert!(m.alive(), "{}", m.log());
    m.unmount().await;
}

/// `dribble`: `get` fails within the budget and a rate window, naming the minimum
/// rate, and leaves no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribble_fails_get_naming_the_minimum_rate() {
    let emu = hostile_emulator(&[Hostile::Dribble]).await;
    let sid = a_recording(&emu);
    let dir = tempdir();
    let ran = timed(get_cmd(&emu.url, &sid, dir.path())).await;
    println!("dribble, get --retry-budget 2s: {ran}");
    let err = stderr(&ran.out);
    assert_eq!(ran.out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot get {sid}"))
            && err.contains("slower than the minimum rate of 32 KiB/s"),
        "{err}"
    );
    assert!(ran.took < Duration::from_secs(15), "{:?}", ran.took);
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// `new-sids`: two listings share no SID, list as many, and a listed SID still gets
/// its recording; a mount shows the new names at each refresh and reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sids_list_fresh_recordings_each_time() {
    let emu = hostile_emulator(&[Hostile::NewSids]).await;
    let first = timed(ls_cmd(&emu.url, "recordings")).await;
    let second = timed(ls_cmd(&emu.url, "recordings")).await;
    println!("new-sids, ls recordings twice: {first}; {second}");
    assert_eq!(first.out.status.code(), Some(0), "{}", stderr(&first.out));
    assert_eq!(second.out.status.code(), Some(0), "{}", stderr(&second.out));
    let (a, b) = (listed_sids(&first.out), listed_sids(&second.out));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len());
    assert!(a.iter().all(|s| !b.contains(s)), "{a:?} {b:?}");
    let known: Vec<String> = emu.emulator.objects().into_iter().map(|o| o.sid).collect();
    assert!(a.iter().all(|s| !known.contains(s)), "{a:?}");

    // A listed SID is the recording whose SID ends like it.
    let o = an_object(&emu, "RT");
    let listed = b.iter().find(|s| s[10..] == o.sid[10..]).unwrap().clone();
    let dir = tempdir();
    let dest = dir.path().join("out.mka");
    let ran = timed(get_cmd(&emu.url, &listed, &dest)).await;
    println!("new-sids, get of a listed SID: {ran}");
    assert_eq!(ran.out.status.code(), Some(0), "{}", stderr(&ran.out));
    assert_eq!(sha256_file(&dest), sha256(o.plaintext.as_ref().unwrap()));

    let m = Mount::new();
    let mut cmd = m.command(&emu.url, &[&keys().pem[0]]);
    cmd.args(["--foreground", "--refresh", "300ms"]);
    let mut m = m.spawn(limited(cmd)).await;
    let dir = m.path.join("recordings");
    let mut seen: Vec<Vec<String>> = Vec::new();
    for _ in 0..2 {
        let mut tries = 0;
        let names = loop {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let d = dir.clone();
            let names = blocking(move || files_in(&d)).await;
            if seen.last() != Some(&names) {
                break names;
            }
            tries += 1;
            assert!(tries < 20, "no new listing");
        };
        seen.push(names);
    }
    assert!(seen[0].iter().all(|n| !seen[1].contains(n)), "{seen:?}");
    let name = seen[1]
        .iter()
        .find(|n| n[10..].starts_with(&o.sid[10..]))
        .unwrap();
    let path = dir.join(name);
    let got = blocking(move || std::fs::read(path)).await.unwrap();
    assert_eq!(sha256(&got), sha256(o.plaintext.as_ref().unwrap()));
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    println!(
        "new-sids, a mount over two listings: mount peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    m.unmount().await;
}

/// `huge-sizes`: files listed with a size of 2^63 or u64::MAX show as size 0 in a
/// mount (FUSE cannot answer such a size), and still read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sizes_show_as_zero_in_a_mount() {
    let emu = hostile_emulator(&[Hostile::HugeSizes]).await;
    // The listing says both sizes.
    let c = twilio_media_fs::emulator::EmulatorCredentials::default();
    let listing: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/Recordings?PageSize=100", emu.url))
        .basic_auth(&c.account_sid, Some(&c.auth_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sizes: Vec<u64> = listing["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["size"].as_u64())
        .collect();
    assert!(
        sizes.contains(&(1 << 63)) && sizes.contains(&u64::MAX),
        "{sizes:?}"
    );
    let mut m = Mount::start(&emu.url, &[&keys().pem[0]], &[]).await;
    let recordings: Vec<ObjectInfo> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.status == "completed" && o.sid.starts_with("RT") && o.size.is_some())
        .collect();
    assert!(recordings.len() >= 2, "both huge sizes are listed");
    let started = Instant::now();
    for o in &recordings {
        let path = m.file(o);
        let meta = blocking(move || std::fs::metadata(path)).await.unwrap();
        assert_eq!(meta.len(), 0, "{}", o.sid);
    }
    let stat_took = started.elapsed();
    let o = recordings.iter().find(|o| o.plaintext.is_some()).unwrap();
    let path = m.file(o);
    let got = blocking(move || std::fs::read(path)).await.unwrap();
    assert_eq!(sha256(&got), sha256(o.plaintext.as_ref().unwrap()));
    let peak = peak_rss_kib(m.child.as_ref().unwrap().id());
    println!(
        "huge-sizes, {} files of size 0 in a mount: stats in {stat_took:?}, \
         mount peak RSS {:.1} MiB",
        recordings.len(),
        peak as f64 / 1024.0
    );
    assert!(m.alive(), "{}", m.log());
    m.unmount().await;
}

/// `no-envelope`: `get` refuses the bare ciphertext, saying why, and leaves no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_envelope_fails_get_and_leaves_no_file() {
    let emu = hostile_emulator(&[Hostile::NoEnvelope]).await;
    let o = an_object(&emu, "RT");
    let dir = tempdir();
    let ran = timed(get_cmd(&emu.url, &o.sid, &dir.path().join("out.mka"))).await;
    println!("no-envelope, get: {ran}");
    let err = stderr(&ran.out);
    assert_eq!(ran.out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&o.sid) && err.contains("without its encryption headers"),
        "{err}"
    );
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// `escapes`: the compositions listing's error (`ls`), a recording's API error and a
/// composition's S3 error (`get`), and the settings (`doctor`) reach stdout and stderr
/// escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_never_reach_the_terminal() {
    let emu = hostile_emulator(&[Hostile::Escapes]).await;
    let dir = tempdir();
    let rt = an_object(&emu, "RT").sid;
    let cj = an_object(&emu, "CJ").sid;
    let mut doctor = cli_at(&emu.url);
    doctor.arg("doctor").arg("-k").arg(&keys().pem[0]);
    let cases = [
        ("ls compositions", ls_cmd(&emu.url, "compositions"), true),
        (
            "get of a recording (API error)",
            get_cmd(&emu.url, &rt, &dir.path().join("a.mka")),
            true,
        ),
        (
            "get of a composition (S3 error)",
            get_cmd(&emu.url, &cj, &dir.path().join("b.mp4")),
            true,
        ),
        ("doctor", doctor, false),
    ];
    for (what, cmd, fails) in cases {
        let ran = timed(cmd).await;
        println!("escapes, {what}: {ran}");
        let out = &ran.out;
        if fails {
            assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(out));
        }
        clean(what, out);
        let said = format!("{}{}", stderr(out), String::from_utf8_lossy(&out.stdout));
        assert!(said.contains("pwned"), "{what}: {said}");
    }
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// `other-host-redirect`: `/Media` points at storage on 127.0.0.2; `get` fetches it
/// there and decrypts, and no request to storage carries credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_host_redirect_is_fetched_without_credentials() {
    if std::net::TcpListener::bind("127.0.0.2:0").is_err() {
        assert!(!in_ci(), "127.0.0.2 cannot be bound");
        eprintln!("SKIPPED: 127.0.0.2 cannot be bound here");
        return;
    }
    let emu = hostile_emulator(&[Hostile::OtherHostRedirect]).await;
    assert!(
        emu.storage_url.starts_with("http://127.0.0.2:"),
        "{}",
        emu.storage_url
    );
    let o = an_object(&emu, "RT");
    let dir = tempdir();
    let dest = dir.path().join("out.mka");
    let ran = timed(get_cmd(&emu.url, &o.sid, &dest)).await;
    println!("other-host-redirect, get: {ran}");
    assert_eq!(ran.out.status.code(), Some(0), "{}", stderr(&ran.out));
    assert_eq!(sha256_file(&dest), sha256(o.plaintext.as_ref().unwrap()));
    let stats = emu.emulator.stats();
    assert!(stats.media_requests >= 1, "{stats:?}");
    assert!(stats.storage_requests >= 1, "{stats:?}");
    assert_eq!(stats.storage_with_credentials, 0, "{stats:?}");
}

/// The binary: `emulator --help` lists every mode, a bad mode is refused, and
/// `emulator --hostile endless-api-body` serves it (its `ls` fails with the bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_binary_serves_hostile_modes() {
    use clap::ValueEnum;
    let help = run_ok(bin().args(["emulator", "--help"]));
    let help = String::from_utf8_lossy(&help);
    for mode in Hostile::value_variants() {
        let name = mode.to_possible_value().unwrap().get_name().to_owned();
        assert!(help.contains(&name), "{name} in {help}");
    }
    let bad = run(bin().args(["emulator", "--hostile", "dribble,nope"]));
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("nope"), "{}", stderr(&bad));

    let dir = tempdir();
    let public = dir.path().join("pub.pem");
    {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let pem = keys().private[0]
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        std::fs::write(&public, pem).unwrap();
    }
    let mut child = bin()
        .args(["emulator", "--hostile", "endless-api-body,dribble"])
        .args(["--listen", "127.0.0.1:0", "--public-key"])
        .arg(&public)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    // Read on until the end: a closed pipe would make its next print fail.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = String::new();
        let mut url = None;
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            banner.push_str(&line);
            banner.push('\n');
            if let Some(u) = line.strip_prefix("twilio-media-fs emulator listening on ") {
                url = Some(u.to_owned());
            }
            if line.starts_with("hostile modes:")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send((url.clone(), banner.clone()));
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send((url, banner));
        }
    });
    let (url, banner) = blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .expect("the banner");
    let url = url.unwrap_or_else(|| panic!("the banner names the URL: {banner}"));
    assert!(
        banner.contains("hostile modes: endless-api-body, dribble"),
        "{banner}"
    );
    let mut ls = ls_cmd(&url, "recordings");
    ls.args(["--retry-budget", "2s"]);
    let ran = timed(ls).await;
    println!("the emulator binary with --hostile endless-api-body, ls recordings: {ran}");
    let err = stderr(&ran.out);
    assert_eq!(ran.out.status.code(), Some(1), "{err}");
    assert!(err.contains("larger than 16 MiB"), "{err}");
    drop(child);
}

/// A reader that closes the emulator's stdout before the banner (`emulator | head -c0`)
/// does not stop it: the banner's write fails quietly and the emulator serves on.
/// Before, `println!` panicked on the broken pipe and the emulator died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_outlives_a_closed_stdout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (read, write) = std::io::pipe().unwrap();
    drop(read);
    let dir = tempdir();
    let err = dir.path().join("stderr");
    let mut child = bin()
        .args(["emulator", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(write)
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/Recordings");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the emulator died ({status}): {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        if reqwest::get(&url).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the emulator never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        alive,
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
}
