//! The emulator over real HTTP: auth, paging, /Media redirects, ranged storage GETs,
//! expiry, faults, stats, conformance of every JSON body to Twilio's OpenAPI spec, and
//! openssl as an independent oracle for what it encrypts.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::Value;
use twilio_media_fs::crypto::window::decrypt_window;
use twilio_media_fs::crypto::{Envelope, PrivateKeys, seal};
use twilio_media_fs::emulator::meeting::MEETING;
use twilio_media_fs::emulator::{
    EmulatorConfig, EmulatorCredentials, ObjectKind, RunningEmulator, spawn,
};

/// Two RSA keys (the second is the "rotated" one), generated once for all tests.
fn keys() -> &'static [rsa::PrivateKey; 2] {
    static KEYS: OnceLock<[rsa::PrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [seal::generate_key(1024), seal::generate_key(1024)])
}

fn config() -> EmulatorConfig {
    EmulatorConfig {
        public_keys: vec![keys()[0].to_public_key()],
        ..Default::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn api(emu: &RunningEmulator, path_or_url: &str) -> reqwest::Response {
    let c = EmulatorCredentials::default();
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_string()
    } else {
        format!("{}{path_or_url}", emu.url)
    };
    client()
        .get(url)
        .basic_auth(&c.account_sid, Some(&c.auth_token))
        .send()
        .await
        .unwrap()
}

async fn json(emu: &RunningEmulator, path: &str) -> Value {
    let resp = api(emu, path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

/// The pre-signed storage URL of an object.
async fn media_url(emu: &RunningEmulator, sid: &str) -> String {
    let kind = if sid.starts_with("CJ") {
        "Compositions"
    } else {
        "Recordings"
    };
    let resp = api(emu, &format!("/v1/{kind}/{sid}/Media")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["redirect_to"].as_str(), Some(location.as_str()));
    location
}

fn header_pairs(resp: &reqwest::Response) -> Vec<(String, String)> {
    resp.headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect()
}

/// Downloads an object whole and decrypts it with the crate's own crypto.
async fn download_and_decrypt(emu: &RunningEmulator, sid: &str) -> Vec<u8> {
    let url = media_url(emu, sid).await;
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = header_pairs(&resp);
    let mut body = resp.bytes().await.unwrap().to_vec();
    let env =
        Envelope::from_headers(headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    let Some(env) = env else {
        return body; // stored unencrypted
    };
    let mut private = PrivateKeys::new();
    private.add("k0", keys()[0].clone());
    private.add("k1", keys()[1].clone());
    // Implicit rejection: a wrong key can yield a well-formed AES key; the padding tells.
    let verify = |cek: &_| decrypt_window(cek, &env.iv, &mut body.clone(), true).map(|_| ());
    let (cek, _) = private.unwrap_cek(&env.wrapped_key, verify).unwrap();
    let n = decrypt_window(&cek, &env.iv, &mut body, true).unwrap();
    body.truncate(n);
    if let Some(len) = env.plaintext_len {
        assert_eq!(len, n as u64);
    }
    body
}

fn first(
    emu: &RunningEmulator,
    pred: impl Fn(&twilio_media_fs::emulator::ObjectInfo) -> bool,
) -> String {
    emu.emulator
        .objects()
        .into_iter()
        .find(|o| pred(o))
        .expect("such an object")
        .sid
}

#[tokio::test]
async fn auth_is_required() {
    let emu = spawn(config()).await.unwrap();
    let url = format!("{}/v1/Recordings", emu.url);
    for auth in [None, Some(("ACnope", "nope"))] {
        let mut req = client().get(&url);
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], 20003);
        assert_eq!(body["status"], 401);
        assert_eq!(body["message"], "Authenticate");
        assert_eq!(
            body["more_info"],
            "https://www.twilio.com/docs/errors/20003"
        );
    }
    let c = EmulatorCredentials::default();
    let resp = client()
        .get(&url)
        .basic_auth(&c.api_key, Some(&c.api_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.emulator.stats().unauthorized, 2);
}

/// Recordings and compositions are listed by one handler: each kind still takes only
/// its own filters, and its paging URLs repeat them in Twilio's order for that kind.
#[tokio::test]
async fn each_media_kind_keeps_its_own_filters_and_paging_urls() {
    let emu = spawn(config()).await.unwrap();
    let objects = emu.emulator.objects();
    let room = &objects
        .iter()
        .find(|o| o.kind == ObjectKind::Composition)
        .unwrap()
        .room_sid;
    let count = |kind, room: Option<&String>| {
        objects
            .iter()
            .filter(|o| o.kind == kind && room.is_none_or(|r| *r == o.room_sid))
            .count()
    };
    let listed =
        async |path: String, key: &str| json(&emu, &path).await[key].as_array().unwrap().len();
    let (rec, comp) = (ObjectKind::Recording, ObjectKind::Composition);
    let by_room = listed(format!("/v1/Compositions?RoomSid={room}"), "compositions").await;
    assert_eq!(by_room, count(comp, Some(room)));
    let by_room = listed(format!("/v1/Recordings?GroupingSid={room}"), "recordings").await;
    assert_eq!(by_room, count(rec, Some(room)));
    // A filter of the other kind is ignored.
    let all = listed(format!("/v1/Recordings?RoomSid={room}"), "recordings").await;
    assert_eq!(all, count(rec, None));
    let all = listed(
        format!("/v1/Compositions?GroupingSid={room}&MediaType=audio"),
        "compositions",
    )
    .await;
    assert_eq!(all, count(comp, None));
    // A room's recordings are seen from the room.
    let body = json(&emu, &format!("/v1/Rooms/{room}/Recordings")).await;
    let first = &body["recordings"][0];
    let sid = first["sid"].as_str().unwrap();
    let url = format!("{}/v1/Rooms/{room}/Recordings/{sid}", emu.url);
    assert_eq!(first["url"].as_str(), Some(url.as_str()));
    assert_eq!(first["links"]["media"], format!("{url}/Media"));

    let before = "2030-01-01T00:00:00Z";
    let body = json(
        &emu,
        &format!(
            "/v1/Recordings?DateCreatedBefore={before}&MediaType=audio&Status=completed&PageSize=1"
        ),
    )
    .await;
    assert_eq!(
        body["meta"]["next_page_url"].as_str().unwrap(),
        format!(
            "{}/v1/Recordings?Status=completed&MediaType=audio&\
             DateCreatedBefore=2030-01-01T00%3A00%3A00Z&PageSize=1&Page=1&PageToken=PT1",
            emu.url
        )
    );
    let body = json(
        &emu,
        &format!(
            "/v1/Compositions?RoomSid={room}&DateCreatedBefore={before}&Status=completed&PageSize=1"
        ),
    )
    .await;
    assert_eq!(
        body["meta"]["url"].as_str().unwrap(),
        format!(
            "{}/v1/Compositions?Status=completed&DateCreatedBefore=2030-01-01T00%3A00%3A00Z&\
             RoomSid={room}&PageSize=1&Page=0",
            emu.url
        )
    );
}

#[tokio::test]
async fn paging_returns_every_recording_once() {
    let emu = spawn(EmulatorConfig {
        extra_recordings: 250,
        ..config()
    })
    .await
    .unwrap();
    let mut next = Some(format!("{}/v1/Recordings?PageSize=100", emu.url));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        let body: Value = api(&emu, &url).await.json().await.unwrap();
        pages += 1;
        assert_eq!(body["meta"]["page_size"], 100);
        assert_eq!(body["meta"]["key"], "recordings");
        for r in body["recordings"].as_array().unwrap() {
            seen.push(r["sid"].as_str().unwrap().to_string());
        }
        next = body["meta"]["next_page_url"].as_str().map(String::from);
        assert!(pages < 10);
    }
    assert!(pages >= 3, "{pages} pages");
    let expected: HashSet<String> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.kind == ObjectKind::Recording)
        .map(|o| o.sid)
        .collect();
    assert_eq!(seen.len(), expected.len(), "no duplicates");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
    // Filters.
    let body = json(&emu, "/v1/Recordings?Status=processing").await;
    assert_eq!(body["recordings"].as_array().unwrap().len(), 1);
    // Two samples, and the meeting room's cameras.
    let meeting_videos = MEETING.iter().filter(|t| t.kind == "video").count();
    let body = json(&emu, "/v1/Recordings?MediaType=video").await;
    assert_eq!(
        body["recordings"].as_array().unwrap().len(),
        2 + meeting_videos
    );
    // The first sample, and the meeting's recordings: its room (09:30) is older than
    // the samples (10:00 on).
    let body = json(
        &emu,
        "/v1/Recordings?DateCreatedBefore=2026-11-01T10:00:00Z",
    )
    .await;
    assert_eq!(
        body["recordings"].as_array().unwrap().len(),
        1 + MEETING.len()
    );
    let body = json(&emu, "/v1/Rooms").await;
    assert_eq!(
        body["rooms"].as_array().unwrap().len(),
        0,
        "default in-progress"
    );
    let body = json(
        &emu,
        "/v1/Rooms?Status=completed&DateCreatedAfter=2026-11-01T09:05:00Z",
    )
    .await;
    // Rooms b (09:10), load (09:20) and the meeting (09:30).
    assert_eq!(body["rooms"].as_array().unwrap().len(), 3);
    let body = json(&emu, "/v1/Rooms?Status=completed").await;
    let room = body["rooms"][0]["sid"].as_str().unwrap().to_string();
    let body = json(&emu, &format!("/v1/Recordings?GroupingSid={room}")).await;
    let by_group = body["recordings"].as_array().unwrap().len();
    let body = json(&emu, &format!("/v1/Rooms/{room}/Recordings")).await;
    assert_eq!(body["recordings"].as_array().unwrap().len(), by_group);
    assert!(by_group >= 2);
    let resp = api(&emu, "/v1/Recordings?PageSize=1000").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn media_redirect_and_ranged_gets() {
    let emu = spawn(config()).await.unwrap();
    let sid = first(&emu, |o| {
        o.extension == "mka" && o.encrypted && o.length_header
    });
    let url = media_url(&emu, &sid).await;
    // Storage is another host than the API (here, another port).
    assert!(url.starts_with(&format!("{}/storage/", emu.storage_url)));
    assert_ne!(emu.storage_url, emu.url);
    let plain = emu.emulator.plaintext(&sid).unwrap();
    let total = seal_len(plain.len());

    let resp = client()
        .get(&url)
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let h = resp.headers();
    assert_eq!(h["content-range"], format!("bytes 0-99/{total}").as_str());
    assert_eq!(h["content-length"], "100");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["x-amz-meta-x-amz-matdesc"], "{}");
    assert_eq!(
        h["x-amz-meta-x-amz-unencrypted-content-length"],
        plain.len().to_string().as_str()
    );
    assert_eq!(
        STANDARD
            .decode(h["x-amz-meta-x-amz-iv"].as_bytes())
            .unwrap()
            .len(),
        16
    );
    assert!(h.contains_key("x-amz-meta-x-amz-key"));
    assert!(h.contains_key("etag"));
    assert_eq!(h["content-type"], "audio/x-matroska");
    assert_eq!(resp.bytes().await.unwrap().len(), 100);

    // Suffix and open-ended ranges agree with the whole object.
    let whole = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(whole.len() as u64, total);
    let tail = client()
        .get(&url)
        .header("Range", "bytes=-32")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.headers()["content-range"],
        format!("bytes {}-{}/{total}", total - 32, total - 1).as_str()
    );
    assert_eq!(tail.bytes().await.unwrap(), whole[whole.len() - 32..]);
    let rest = client()
        .get(&url)
        .header("Range", format!("bytes={}-", total - 20))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.bytes().await.unwrap(), whole[whole.len() - 20..]);

    let resp = client()
        .get(&url)
        .header("Range", format!("bytes={total}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes */{total}").as_str()
    );

    let resp = client().head(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // A tampered URL is refused.
    let resp = client()
        .get(url.replace("Signature=", "Signature=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Not completed: no media.
    for status in ["processing", "deleted"] {
        let sid = first(&emu, |o| o.status == status);
        let resp = api(&emu, &format!("/v1/Recordings/{sid}/Media")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], 20404);
    }
    let resp = api(&emu, "/v1/Recordings/RT00000000000000000000000000000000").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

fn seal_len(plain: usize) -> u64 {
    twilio_media_fs::crypto::window::ciphertext_len(plain as u64)
}

#[tokio::test]
async fn every_object_decrypts_to_its_plaintext() {
    let emu = spawn(EmulatorConfig {
        public_keys: vec![keys()[0].to_public_key(), keys()[1].to_public_key()],
        synthetic: vec![0, 17, 100_000],
        extra_recordings: 3,
        ..config()
    })
    .await
    .unwrap();
    let objects = emu.emulator.objects();
    assert!(objects.iter().any(|o| !o.encrypted && o.size.is_some()));
    assert!(objects.iter().any(|o| o.encrypted && !o.length_header));
    assert!(objects.iter().any(|o| o.key_index == Some(1)));
    assert_eq!(
        objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Composition)
            .count(),
        2
    );
    for o in objects.iter().filter(|o| o.status == "completed") {
        let got = download_and_decrypt(&emu, &o.sid).await;
        let want = emu.emulator.plaintext(&o.sid).unwrap();
        assert_eq!(got.len() as u64, o.size.unwrap(), "{}", o.sid);
        assert!(got == want, "{} decrypts to its plaintext", o.sid);
    }
}

#[tokio::test]
async fn synthetic_objects_stream_and_serve_ranges() {
    let size = 8 << 20;
    let emu = spawn(EmulatorConfig {
        synthetic: vec![size + 5],
        ..config()
    })
    .await
    .unwrap();
    let sid = first(&emu, |o| o.synthetic);
    let url = media_url(&emu, &sid).await;
    let whole = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let total = seal_len(size as usize + 5);
    assert_eq!(whole.len() as u64, total);
    for (a, b) in [
        (0u64, 15u64),
        (1_000_003, 3_000_017),
        (total - 33, total - 1),
    ] {
        let part = client()
            .get(&url)
            .header("Range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(part, whole[a as usize..=b as usize]);
    }
    assert_eq!(emu.emulator.plaintext(&sid).unwrap().len() as u64, size + 5);
}

#[tokio::test]
async fn expired_urls_are_refused() {
    let emu = spawn(EmulatorConfig {
        ttl: Duration::from_secs(1),
        ..config()
    })
    .await
    .unwrap();
    let sid = first(&emu, |o| o.status == "completed");
    let url = media_url(&emu, &sid).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.text().await.unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("Request has expired"), "{body}");
    // The client's Ttl caps the lifetime too.
    let emu = spawn(config()).await.unwrap();
    let resp = api(&emu, &format!("/v1/Recordings/{sid}/Media?Ttl=1")).await;
    let url = resp.headers()["location"].to_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn fault_knobs_fire() {
    // 500 on every 2nd storage GET.
    let emu = spawn(EmulatorConfig {
        fail_every: Some(2),
        ..config()
    })
    .await
    .unwrap();
    let sid = first(&emu, |o| o.status == "completed");
    let url = media_url(&emu, &sid).await;
    let codes: Vec<u16> = futures_in_order(&url, 4).await;
    assert_eq!(codes, [200, 500, 200, 500]);
    assert_eq!(emu.emulator.stats().server_errors, 2);
    assert_eq!(emu.emulator.stats().faults_injected, 2);

    // Every 2nd body cut half way, after a full Content-Length.
    let emu = spawn(EmulatorConfig {
        drop_every: Some(2),
        ..config()
    })
    .await
    .unwrap();
    let url = media_url(&emu, &sid).await;
    assert!(
        client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .is_ok()
    );
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.content_length().unwrap() > 0);
    assert!(resp.bytes().await.is_err(), "the body is cut short");
    assert_eq!(emu.emulator.stats().dropped_bodies, 1);

    // Every 3rd API call throttled.
    let emu = spawn(EmulatorConfig {
        throttle_every: Some(3),
        ..config()
    })
    .await
    .unwrap();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let resp = api(&emu, "/v1/Recordings").await;
        codes.push(resp.status().as_u16());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(resp.headers()["retry-after"], "1");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], 20429);
        }
    }
    assert_eq!(codes, [200, 200, 429]);
    assert_eq!(emu.emulator.stats().throttled, 1);

    // Latency before each response.
    let emu = spawn(EmulatorConfig {
        latency: Duration::from_millis(150),
        ..config()
    })
    .await
    .unwrap();
    let start = Instant::now();
    api(&emu, "/v1/Recordings").await;
    assert!(start.elapsed() >= Duration::from_millis(150));

    // Bandwidth: 100 KB at 250 KB/s takes about 0.4 s.
    let emu = spawn(EmulatorConfig {
        bandwidth: Some(250_000),
        ..config()
    })
    .await
    .unwrap();
    let big = first(&emu, |o| o.extension == "mp4");
    let url = media_url(&emu, &big).await;
    let start = Instant::now();
    let body = client()
        .get(&url)
        .header("Range", "bytes=0-99999")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 100_000);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Status codes of `n` sequential GETs of `url`.
async fn futures_in_order(url: &str, n: usize) -> Vec<u16> {
    let mut codes = Vec::new();
    for _ in 0..n {
        let resp = client().get(url).send().await.unwrap();
        codes.push(resp.status().as_u16());
        let _ = resp.bytes().await;
    }
    codes
}

#[tokio::test]
async fn stats_count_requests_and_bytes() {
    let emu = spawn(config()).await.unwrap();
    let sid = first(&emu, |o| o.status == "completed");
    let url = media_url(&emu, &sid).await;
    for range in ["bytes=0-999", "bytes=1000-1499"] {
        let resp = client()
            .get(&url)
            .header("Range", range)
            .send()
            .await
            .unwrap();
        resp.bytes().await.unwrap();
    }
    let stats: Value = client()
        .get(format!("{}/emulator/stats", emu.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["storage_bytes"], 1500);
    assert_eq!(stats["storage_requests"], 2);
    assert_eq!(stats["media_requests"], 1);
    assert_eq!(stats["api_requests"], 1);
    assert_eq!(emu.emulator.stats().storage_bytes, 1500);
    let resp = client()
        .post(format!("{}/emulator/stats/reset", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(emu.emulator.stats(), Default::default());
}

// ---- conformance to Twilio's OpenAPI spec ----

fn spec() -> Value {
    let local = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/twilio-oai/twilio_video_v1.json"
    );
    let text = std::fs::read_to_string(local)
        .or_else(|_| std::fs::read_to_string("/work/shared/twilio-oai/twilio_video_v1.json"))
        .expect("Twilio's OpenAPI spec beside the checkout (shared/twilio-oai)");
    serde_json::from_str(&text).unwrap()
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("local ref");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// `^RT[0-9a-fA-F]{32}$` and `^[a-zA-Z]{2}[0-9a-fA-F]{32}$`: the only patterns used.
fn matches_sid_pattern(pattern: &str, s: &str) -> bool {
    let Some(prefix) = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix("[0-9a-fA-F]{32}$"))
    else {
        panic!("unexpected pattern {pattern}");
    };
    if s.len() != 34 || !s[2..].bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    match prefix {
        "[a-zA-Z]{2}" => s[..2].bytes().all(|b| b.is_ascii_alphabetic()),
        literal => &s[..2] == literal,
    }
}

fn validate(spec: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if v.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            errors.push(format!("{at}: null but not nullable"));
        }
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(v)
    {
        errors.push(format!("{at}: {v} not in {values:?}"));
    }
    let Some(ty) = schema.get("type").and_then(Value::as_str) else {
        return; // untyped (grouping_sids, video_layout): anything goes
    };
    let ok = match ty {
        "string" => {
            let s = v.as_str();
            if let (Some(s), Some(p)) = (s, schema.get("pattern").and_then(Value::as_str))
                && !matches_sid_pattern(p, s)
            {
                errors.push(format!("{at}: {s:?} does not match {p}"));
            }
            match (s, schema.get("format").and_then(Value::as_str)) {
                (Some(s), Some("date-time")) => {
                    let b = s.as_bytes();
                    if !(s.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z') {
                        errors.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
                    }
                }
                (Some(s), Some("uri")) if !s.starts_with("http") => {
                    errors.push(format!("{at}: {s:?} is not a URI"));
                }
                _ => {}
            }
            s.is_some()
        }
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "array" => {
            if let Some(items) = v.as_array() {
                for (i, item) in items.iter().enumerate() {
                    validate(spec, &schema["items"], item, &format!("{at}[{i}]"), errors);
                }
            }
            v.is_array()
        }
        "object" => {
            if let (Some(obj), Some(props)) = (
                v.as_object(),
                schema.get("properties").and_then(Value::as_object),
            ) {
                for (k, val) in obj {
                    match props.get(k) {
                        Some(s) => validate(spec, s, val, &format!("{at}.{k}"), errors),
                        None => errors.push(format!("{at}.{k}: not in the spec")),
                    }
                }
                for k in props.keys() {
                    if !obj.contains_key(k) {
                        errors.push(format!("{at}.{k}: missing"));
                    }
                }
            }
            v.is_object()
        }
        other => panic!("unexpected type {other}"),
    };
    if !ok {
        errors.push(format!("{at}: {v} is not a {ty}"));
    }
}

#[tokio::test]
async fn json_bodies_match_the_openapi_spec() {
    let spec = spec();
    let emu = spawn(EmulatorConfig {
        extra_recordings: 3,
        synthetic: vec![1000],
        ..config()
    })
    .await
    .unwrap();
    let rec = first(&emu, |o| o.kind == ObjectKind::Recording);
    let processing = first(&emu, |o| o.status == "processing");
    let comp = first(&emu, |o| o.kind == ObjectKind::Composition);
    let rooms = json(&emu, "/v1/Rooms?Status=completed").await;
    let room = rooms["rooms"][0]["sid"].as_str().unwrap().to_string();
    let cases = [
        ("/v1/Recordings", "/v1/Recordings".to_string()),
        (
            "/v1/Recordings",
            "/v1/Recordings?PageSize=2&Status=completed".into(),
        ),
        ("/v1/Recordings/{Sid}", format!("/v1/Recordings/{rec}")),
        (
            "/v1/Recordings/{Sid}",
            format!("/v1/Recordings/{processing}"),
        ),
        ("/v1/Compositions", "/v1/Compositions".into()),
        ("/v1/Compositions/{Sid}", format!("/v1/Compositions/{comp}")),
        ("/v1/Rooms", "/v1/Rooms?Status=completed&PageSize=1".into()),
        ("/v1/Rooms/{Sid}", format!("/v1/Rooms/{room}")),
        (
            "/v1/Rooms/{RoomSid}/Recordings",
            format!("/v1/Rooms/{room}/Recordings"),
        ),
        (
            "/v1/Rooms/{RoomSid}/Recordings/{Sid}",
            format!("/v1/Rooms/{room}/Recordings/{rec}"),
        ),
        (
            "/v1/RecordingSettings/Default",
            "/v1/RecordingSettings/Default".into(),
        ),
        (
            "/v1/CompositionSettings/Default",
            "/v1/CompositionSettings/Default".into(),
        ),
    ];
    let mut errors = Vec::new();
    for (template, path) in cases {
        let body = json(&emu, &path).await;
        let schema = &spec["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        assert!(!schema.is_null(), "no schema for {template}");
        validate(&spec, schema, &body, &path, &mut errors);
        // Every link the API gives works.
        if let Some(url) = body.get("url").and_then(Value::as_str) {
            assert_eq!(api(&emu, url).await.status(), StatusCode::OK, "{url}");
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The recording's links.media and the room recording's both redirect.
    let body = json(&emu, &format!("/v1/Rooms/{room}/Recordings/{rec}")).await;
    let media = body["links"]["media"].as_str().unwrap();
    assert_eq!(api(&emu, media).await.status(), StatusCode::FOUND);
}

// ---- openssl as the oracle ----

#[tokio::test]
async fn openssl_decrypts_what_the_emulator_serves() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("openssl is required in CI");
        }
        eprintln!("skipping: openssl not found");
        return;
    }
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let emu = spawn(config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = keys()[0].to_pkcs8_pem(LineEnding::LF).unwrap();
    let key_path = dir.path().join("private.pem");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .unwrap();
        f.write_all(pem.as_bytes()).unwrap();
    }
    // AES-256 (audio-opus) and AES-128 (video-h264, no length header on audio-pcmu).
    let wanted: Vec<String> = emu
        .emulator
        .objects()
        .into_iter()
        .filter(|o| o.encrypted && !o.synthetic && matches!(o.extension.as_str(), "mka" | "mkv"))
        .map(|o| o.sid)
        .collect();
    let mut ciphers = HashMap::new();
    for sid in &wanted {
        let url = media_url(&emu, sid).await;
        let resp = client().get(url).send().await.unwrap();
        let h = resp.headers().clone();
        let body = resp.bytes().await.unwrap();
        let wrapped = STANDARD
            .decode(h["x-amz-meta-x-amz-key"].as_bytes())
            .unwrap();
        let iv = STANDARD
            .decode(h["x-amz-meta-x-amz-iv"].as_bytes())
            .unwrap();
        let wrapped_path = dir.path().join(format!("{sid}.key"));
        let cipher_path = dir.path().join(format!("{sid}.enc"));
        std::fs::write(&wrapped_path, wrapped).unwrap();
        std::fs::write(&cipher_path, &body).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(&key_path)
            .args(["-pkeyopt", "rsa_padding_mode:pkcs1", "-in"])
            .arg(&wrapped_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cek = out.stdout;
        let cipher = match cek.len() {
            32 => "-aes-256-cbc",
            16 => "-aes-128-cbc",
            n => panic!("a {n}-byte CEK"),
        };
        *ciphers.entry(cipher).or_insert(0) += 1;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let out = std::process::Command::new("openssl")
            .args([
                "enc",
                "-d",
                cipher,
                "-K",
                &hex(&cek),
                "-iv",
                &hex(&iv),
                "-in",
            ])
            .arg(&cipher_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == emu.emulator.plaintext(sid).unwrap(), "{sid}");
    }
    assert!(ciphers.contains_key("-aes-256-cbc") && ciphers.contains_key("-aes-128-cbc"));
}

#[tokio::test]
async fn data_dir_files_become_recordings_and_compositions() {
    let dir = tempfile::tempdir().unwrap();
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    std::fs::copy(
        format!("{samples}/audio-opus.mka"),
        dir.path().join("mine.mka"),
    )
    .unwrap();
    std::fs::copy(
        format!("{samples}/composition.webm"),
        dir.path().join("talk.webm"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let plain: HashSet<String> = (spawn(config()).await.unwrap().emulator.objects())
        .into_iter()
        .map(|o| o.sid)
        .collect();
    let emu = spawn(EmulatorConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap();
    let objects = emu.emulator.objects();
    assert_eq!(objects.len(), plain.len() + 2);
    // In the order of the directory (not last: the meeting room's recordings are).
    let added: Vec<_> = objects.iter().filter(|o| !plain.contains(&o.sid)).collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0].kind, ObjectKind::Recording);
    assert_eq!(added[0].extension, "mka");
    assert_eq!(added[1].kind, ObjectKind::Composition);
    assert_eq!(added[1].extension, "webm");
    for o in added {
        let got = download_and_decrypt(&emu, &o.sid).await;
        assert!(got == emu.emulator.plaintext(&o.sid).unwrap());
    }
}

/// `stall_every`: the body stops half way for `stall`, then completes; a client with a
/// shorter timeout gives up on it.
#[tokio::test]
async fn stalled_bodies_pause_half_way() {
    let emu = spawn(EmulatorConfig {
        stall_every: Some(2),
        stall: Duration::from_millis(1500),
        ..config()
    })
    .await
    .unwrap();
    let sid = first(&emu, |o| o.status == "completed" && o.encrypted);
    let url = media_url(&emu, &sid).await;
    let started = Instant::now();
    let whole = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the 1st body is not stalled"
    );
    let started = Instant::now();
    let stalled = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the 2nd body stalls"
    );
    assert_eq!(stalled, whole, "and then completes, unchanged");
    assert_eq!(emu.emulator.stats().stalled_bodies, 1);
    // Impatient clients time out on the stalled one (the 4th body).
    let _ = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let got = async { impatient.get(&url).send().await?.bytes().await }.await;
    assert!(got.unwrap_err().is_timeout());
}

/// A storage outage refuses new connections and resets the open ones; the API stays
/// up; afterwards storage serves on the same address again. Also over HTTP:
/// `POST /emulator/storage/outage?secs=N`.
#[tokio::test]
async fn storage_outages_refuse_and_reset_connections() {
    let emu = spawn(config()).await.unwrap();
    let sid = first(&emu, |o| o.status == "completed" && o.encrypted);
    let url = media_url(&emu, &sid).await;
    let pooled = client();
    assert_eq!(
        pooled.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    emu.emulator.set_storage_down(true);
    for c in [&pooled, &client()] {
        let err = c.get(&url).send().await.unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
    }
    let refused = tokio::net::TcpStream::connect(emu.storage_url.trim_start_matches("http://"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The API answers meanwhile, and hands out URLs.
    assert_eq!(
        media_url(&emu, &sid).await.split('?').next(),
        url.split('?').next()
    );
    assert!(emu.emulator.storage_down());

    emu.emulator.set_storage_down(false);
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = pooled.get(&url).send().await {
            status = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, Some(StatusCode::OK), "storage is back");

    // The control endpoint: down for 0.5 s, then back by itself.
    let resp = client()
        .post(format!("{}/emulator/storage/outage?secs=0.5", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(client().get(&url).send().await.is_err());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    let bad = client()
        .post(format!("{}/emulator/storage/outage?secs=-1", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(emu.emulator.stats().storage_outages, 2);
}

/// Pre-encrypted `--data` objects: their `x-amz-meta-*` headers go out verbatim, even
/// ones no client can use, and a `Content-Length` beyond the file makes every body stop
/// where the file ends.
#[tokio::test]
async fn pre_encrypted_objects_keep_their_headers_and_their_shortness() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("odd.mka.enc"), vec![7u8; 100]).unwrap();
    std::fs::write(
        dir.path().join("odd.mka.headers"),
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nx-amz-meta-x-amz-iv: c2hvcnQ=\r\n\
         X-Amz-Meta-X-Amz-Cek-Alg: AES/GCM/NoPadding\r\nx-amz-key: not base64!\r\n\r\n",
    )
    .unwrap();
    let emu = spawn(EmulatorConfig {
        data_dir: Some(dir.path().to_owned()),
        ..config()
    })
    .await
    .unwrap();
    let sid = first(&emu, |o| {
        o.plaintext.is_none() && !o.synthetic && o.encrypted
    });
    let url = media_url(&emu, &sid).await;
    let resp = client()
        .get(&url)
        .header("Range", "bytes=0-49")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let h = resp.headers().clone();
    assert_eq!(h["x-amz-meta-x-amz-iv"], "c2hvcnQ=");
    assert_eq!(h["x-amz-meta-x-amz-cek-alg"], "AES/GCM/NoPadding");
    assert_eq!(h["x-amz-meta-x-amz-key"], "not base64!");
    assert_eq!(h["content-range"], "bytes 0-49/1000");
    assert_eq!(resp.bytes().await.unwrap().len(), 50);
    // Past the file's 100 bytes, the body never completes.
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(1000));
    assert!(resp.bytes().await.is_err(), "cut where the file ends");
    let resp = client()
        .get(&url)
        .header("Range", "bytes=500-599")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert!(resp.bytes().await.is_err(), "nothing there");
}
