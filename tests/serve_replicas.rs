//! Scale-out as shipped: packaging/serve/nginx.conf (its ports and paths changed, its
//! proxying as it is) in front of two `serve` replicas. One replica is killed during a
//! 1 GiB download; the download is resumed with `curl -C -` through nginx, which sends
//! it to the other replica, and the file is byte-identical. (A debug build decrypts at
//! some 10 MB/s: the test takes a couple of minutes, most of it the resumed download.)

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::{emulator_config, keys};
use common::serve::Served;
use common::*;
use twilio_media_fs::emulator::{EmulatorConfig, spawn};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/serve/nginx.conf");

/// The example config, made to run in `dir` as this user: listening on `port`, the
/// replicas on `replicas`, pid, logs and temp files in `dir`.
fn config(dir: &Path, port: u16, replicas: &[u16]) -> String {
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let d = dir.display();
    let servers: String = replicas
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=0;\n"))
        .collect();
    let mut out = String::new();
    let mut servers_written = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("server 127.0.0.1:") {
            if !servers_written {
                out.push_str(&servers);
                servers_written = true;
            }
            continue;
        }
        let line = match t {
            _ if t.starts_with("pid ") => format!("pid {d}/nginx.pid;"),
            _ if t.starts_with("error_log ") => format!("error_log {d}/error.log info;"),
            _ if t.starts_with("access_log ") => format!("access_log {d}/access.log twilio_media;"),
            _ if t.starts_with("worker_processes ") => "worker_processes 1;".to_owned(),
            "listen 80;" => format!(
                "listen 127.0.0.1:{port};\n\
                 client_body_temp_path {d}/client_body_temp;\n\
                 proxy_temp_path {d}/proxy_temp;\n\
                 fastcgi_temp_path {d}/fastcgi_temp;\n\
                 uwsgi_temp_path {d}/uwsgi_temp;\n\
                 scgi_temp_path {d}/scgi_temp;"
            ),
            _ => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(servers_written, "the example has an upstream");
    // As root, nginx's workers would run as nobody, who cannot enter a 0700 temp dir.
    if unsafe { libc::geteuid() } == 0 {
        out.insert_str(0, "user root;\n");
    }
    out
}

struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its workers (a SIGKILLed master leaves them
    /// running, listening); SIGKILL only if it has not ended within 5 s.
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_of(s: &Served) -> u16 {
    s.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_download_is_resumed_through_the_other() {
    if !require_tool("nginx") || !require_tool("curl") {
        return;
    }
    const SIZE: u64 = 1 << 30;
    let emu = spawn(EmulatorConfig {
        synthetic: vec![SIZE],
        ..emulator_config()
    })
    .await
    .unwrap();
    let object = emu
        .emulator
        .objects()
        .into_iter()
        .find(|o| o.synthetic)
        .unwrap();
    let path = format!("/recordings/{}.{}", object.sid, object.extension);
    let mut replicas: Vec<Option<Served>> = (0..2)
        .map(|_| {
            Some(Served::start(
                &emu.url,
                &keys().pem[0],
                &["--cache-size", "64MiB"],
            ))
        })
        .collect();
    let ports: Vec<u16> = replicas
        .iter()
        .map(|r| port_of(r.as_ref().unwrap()))
        .collect();

    let dir = tempdir();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config(dir.path(), port, &ports)).unwrap();
    let nginx = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .spawn()
        .expect("nginx");
    let _nginx = Nginx(nginx);
    let front = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The download, slowed so that it is still running when its replica dies.
    let out = dir.path().join("download");
    let mut curl = Command::new("curl")
        .args(["-sS", "--max-time", "900", "--limit-rate", "150M", "-o"])
        .arg(&out)
        .arg(format!("{front}{path}"))
        .spawn()
        .unwrap();
    // Which replica serves it: the one with the file open.
    let serving = {
        let started = Instant::now();
        loop {
            let open: Vec<usize> = (0..2)
                .filter(|&i| replicas[i].as_ref().unwrap().stats()["open_handles"] == 1)
                .collect();
            if open.len() == 1 && std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > 50 << 20 {
                break open[0];
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no replica serves it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    replicas[serving].take(); // SIGKILL
    let status = curl.wait().unwrap();
    let got = std::fs::metadata(&out).unwrap().len();
    assert_eq!(
        status.code(),
        Some(18),
        "cut short: partial file ({got} bytes)"
    );
    assert!(got < SIZE, "{got}");
    eprintln!("replica {serving} killed after {got} bytes");

    // The resume, through nginx: the dead replica refuses, nginx tries the other.
    let resumed = run(Command::new("curl")
        .args(["-sS", "-f", "--max-time", "900", "-C", "-", "-o"])
        .arg(&out)
        .arg(format!("{front}{path}")));
    assert!(
        resumed.status.success(),
        "resume: {}\n{}",
        String::from_utf8_lossy(&resumed.stderr),
        std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default()
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), SIZE);
    let want = emu.emulator.plaintext(&object.sid).unwrap();
    assert_eq!(
        sha256_file(&out),
        sha256(&want),
        "byte-identical after the resume"
    );
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let survivor = format!("127.0.0.1:{}", ports[1 - serving]);
    let last = log.lines().last().unwrap();
    assert!(last.contains(" 206 ") && last.contains(&survivor), "{log}");
}
