//! The emulator's Voice call recordings through the real `TwilioClient`: every recording
//! listed across pages of the 2010-04-01 API, one resource with its
//! `encryption_details`, `media_url` to storage, ranged storage GETs decrypted with the
//! account's private key (OAEP unwrap, then `GcmStream` for the whole object and
//! `apply_ctr` for a window) equal to the catalog's WAV, the unencrypted one served as a
//! WAV, and the storage faults and counters applying to Voice objects too.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use twilio_media_fs::crypto::gcm::apply_ctr;
use twilio_media_fs::crypto::{ContentKey, GcmEnvelope, GcmStream, PrivateKeys, seal};
use twilio_media_fs::emulator::{
    EmulatorConfig, EmulatorCredentials, ObjectInfo, RunningEmulator, spawn,
};
use twilio_media_fs::twilio::{
    ClientConfig, Credentials, Media, MediaFilter, MediaKind, MediaRef, TwilioClient,
};
use zeroize::Zeroizing;

/// Beside the five built-in recordings: enough for three pages of the client's 100.
const EXTRA: u64 = 230;

fn key() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| seal::generate_key(1024))
}

async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    spawn(EmulatorConfig {
        public_keys: vec![key().to_public_key()],
        ..config
    })
    .await
    .unwrap()
}

/// The client as `get` builds it, pointed at the emulator (Voice on the same origin).
fn client(emu: &RunningEmulator) -> TwilioClient {
    let c = EmulatorCredentials::default();
    let mut config = ClientConfig::new(Credentials::auth_token(
        c.account_sid,
        Zeroizing::new(c.auth_token),
    ));
    config.api_url = emu.url.clone();
    TwilioClient::new(config).unwrap()
}

fn keys() -> PrivateKeys {
    let mut keys = PrivateKeys::new();
    keys.add("account", key().clone());
    keys
}

/// The content key and IV of a recording's `encryption_details`, unwrapped with OAEP.
fn content_key(media: &Media) -> (ContentKey, [u8; 12]) {
    let Media::Voice(r) = media else {
        panic!("not a call recording: {media:?}");
    };
    let e = r.encryption().expect("encrypted");
    let envelope = GcmEnvelope::from_base64(
        e.public_key_sid.as_deref(),
        e.encrypted_cek.as_deref().unwrap(),
        e.iv.as_deref().unwrap(),
    )
    .unwrap();
    let (cek, _) = keys().unwrap_oaep(&envelope.wrapped_key).unwrap();
    (cek, envelope.iv)
}

/// Storage bytes `[start, end]` of a pre-signed URL, asked with `Range` (206).
async fn ranged(url: &str, start: u64, end: u64) -> Vec<u8> {
    let resp = reqwest::Client::new()
        .get(url)
        .header("Range", format!("bytes={start}-{end}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 206, "{url}");
    resp.bytes().await.unwrap().to_vec()
}

/// The first of `objects` that `pick` picks.
fn by_name(objects: &[ObjectInfo], pick: impl Fn(&ObjectInfo) -> bool) -> &ObjectInfo {
    objects.iter().find(|o| pick(o)).expect("such a recording")
}

#[tokio::test]
async fn every_call_recording_is_listed_across_pages() {
    let emu = emulator(EmulatorConfig {
        extra_call_recordings: EXTRA,
        ..Default::default()
    })
    .await;
    let twilio = client(&emu);
    let mut pager = twilio
        .media_pages(MediaKind::Voice, &MediaFilter::default())
        .unwrap();
    let mut listed = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        listed.extend(page.into_iter().map(|m| m.sid().to_owned()));
    }
    let want: Vec<String> = emu
        .emulator
        .call_recordings()
        .into_iter()
        .map(|o| o.sid)
        .collect();
    assert_eq!(want.len() as u64, 5 + EXTRA);
    assert_eq!(listed, want);
    assert_eq!(pager.pages(), 3, "pages of 100, by next_page_uri");
    // One call's recordings, by the CallSid filter.
    let dual = by_name(&emu.emulator.call_recordings(), |o| {
        o.size == Some(44 + 8 * 32_000)
    })
    .clone();
    let one_call = twilio
        .media(
            MediaKind::Voice,
            &MediaFilter {
                room: Some(dual.room_sid.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one_call.len(), 2, "the call has two recordings");
    assert!(one_call.iter().any(|m| m.sid() == dual.sid));
}

#[tokio::test]
async fn an_encrypted_recording_decrypts_to_the_catalogs_wav() {
    let emu = emulator(EmulatorConfig::default()).await;
    let twilio = client(&emu);
    let recordings = emu.emulator.call_recordings();
    // The dual-channel one (8 s) and the conference one (the spec's spelling).
    for o in recordings
        .iter()
        .filter(|o| o.encrypted && o.size.unwrap() < 1_000_000)
    {
        let resource = twilio
            .resource(&MediaRef::voice(&o.sid, None))
            .await
            .unwrap();
        let Media::Voice(r) = &resource else {
            panic!("{resource:?}");
        };
        let details = r.encryption_details.clone().expect("encryption_details");
        assert!(details.public_key_sid.as_deref().unwrap().starts_with("CR"));
        let (cek, iv) = content_key(&resource);
        let url = twilio
            .media_url(&MediaRef::voice(&o.sid, Some(details)))
            .await
            .unwrap();
        let url = url.url().as_str().to_owned();
        assert!(url.starts_with(&emu.storage_url), "{url}");
        let plain = emu.emulator.plaintext(&o.sid).unwrap();
        let stored_len = plain.len() as u64 + 16;
        // The whole object in two ranged GETs, through GcmStream (tag checked).
        let mid = 4096 + 7;
        let mut stream = GcmStream::new(cek.clone(), iv).unwrap();
        let mut out = Vec::new();
        stream
            .update(&ranged(&url, 0, mid - 1).await, &mut out)
            .unwrap();
        stream
            .update(&ranged(&url, mid, stored_len - 1).await, &mut out)
            .unwrap();
        assert_eq!(stream.finish(&mut out), Ok(plain.len() as u64));
        assert_eq!(out, plain, "{}", o.sid);
        assert_eq!(&out[..4], b"RIFF");
        assert_eq!(&out[8..12], b"WAVE");
        // One aligned window on its own.
        let mut window = ranged(&url, 1600, 1600 + 999).await;
        apply_ctr(&cek, &iv, 1600, &mut window).unwrap();
        assert_eq!(window, &plain[1600..2600]);
    }
    // The storage counted the Voice bytes.
    assert!(emu.emulator.stats().storage_bytes > 2 * 64_000);
    // The 2-channel one says so.
    let dual = by_name(&recordings, |o| o.size == Some(44 + 8 * 32_000));
    let Media::Voice(r) = twilio
        .resource(&MediaRef::voice(&dual.sid, None))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(r.channels, Some(2));
    assert_eq!(r.source.as_deref(), Some("DialVerb"));
    assert_eq!(r.duration, Some(8));
    assert!(r.created().is_some(), "RFC 2822 date_created");
}

#[tokio::test]
async fn the_unencrypted_recording_is_served_as_its_wav() {
    let emu = emulator(EmulatorConfig::default()).await;
    let twilio = client(&emu);
    let plain = by_name(&emu.emulator.call_recordings(), |o| !o.encrypted).clone();
    let resource = twilio
        .resource(&MediaRef::voice(&plain.sid, None))
        .await
        .unwrap();
    let Media::Voice(r) = &resource else { panic!() };
    assert!(r.encryption_details.is_none() && r.encryption().is_none());
    let url = twilio
        .media_url(&MediaRef::voice(&plain.sid, None))
        .await
        .unwrap();
    let size = plain.size.unwrap();
    let body = ranged(url.url().as_str(), 0, size - 1).await;
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(&body[8..12], b"WAVE");
    assert_eq!(body, emu.emulator.plaintext(&plain.sid).unwrap());
}

/// The 10-minute recording: listed with its size before anything is sealed, and a
/// window near its end decrypts to the catalog's WAV.
#[tokio::test]
async fn the_ten_minute_recording() {
    let emu = emulator(EmulatorConfig::default()).await;
    let twilio = client(&emu);
    let long = by_name(&emu.emulator.call_recordings(), |o| {
        o.size.unwrap() > 10_000_000
    })
    .clone();
    assert_eq!(long.size, Some(44 + 2 * 2 * 8000 * 600));
    let resource = twilio
        .resource(&MediaRef::voice(&long.sid, None))
        .await
        .unwrap();
    let Media::Voice(r) = &resource else { panic!() };
    assert_eq!(r.duration, Some(600));
    let (cek, iv) = content_key(&resource);
    let url = twilio
        .media_url(&MediaRef::voice(&long.sid, None))
        .await
        .unwrap();
    let start = long.size.unwrap() / 16 * 16 - 64_000;
    let mut window = ranged(url.url().as_str(), start, start + 63_999).await;
    apply_ctr(&cek, &iv, start, &mut window).unwrap();
    let plain = emu.emulator.plaintext(&long.sid).unwrap();
    assert_eq!(window, &plain[start as usize..start as usize + 64_000]);
}

/// `--fail-every` and `--drop-every` hit Voice storage GETs as they do Video ones.
#[tokio::test]
async fn storage_faults_apply_to_call_recordings() {
    let emu = emulator(EmulatorConfig {
        fail_every: Some(2),
        ..Default::default()
    })
    .await;
    let twilio = client(&emu);
    let o = by_name(&emu.emulator.call_recordings(), |o| !o.encrypted).clone();
    let url = twilio
        .media_url(&MediaRef::voice(&o.sid, None))
        .await
        .unwrap();
    let url = url.url().as_str();
    let get = || reqwest::Client::new().get(url).send();
    assert_eq!(get().await.unwrap().status().as_u16(), 200);
    assert_eq!(get().await.unwrap().status().as_u16(), 500);
    let stats = emu.emulator.stats();
    assert_eq!((stats.storage_requests, stats.server_errors), (2, 1));
    assert_eq!(stats.storage_bytes, o.size.unwrap());
    // An expired URL: 403 from storage, as for Video.
    let expired = url.replace("Expires=", "Expires=1&Old=");
    let resp = reqwest::Client::new().get(&expired).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

/// The emulator's page and resource have exactly the fields of the spec's schemas
/// (`ListRecordingResponse`, `api.v2010.account.recording`), read from
/// `twilio_api_v2010.json`.
#[tokio::test]
async fn bodies_have_the_fields_of_the_spec() {
    let Some(file) = common::prism::spec_path("twilio_api_v2010.json") else {
        common::prism::unavailable("twilio_api_v2010.json is not beside the checkout");
        return;
    };
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let list = "/2010-04-01/Accounts/{AccountSid}/Recordings.json";
    let page_schema = &spec["paths"][list]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["properties"];
    let resource_schema =
        &spec["components"]["schemas"]["api.v2010.account.recording"]["properties"];
    let emu = emulator(EmulatorConfig::default()).await;
    let c = EmulatorCredentials::default();
    let get = |path: String| {
        let c = c.clone();
        let url = format!("{}{path}", emu.url);
        async move {
            let resp = reqwest::Client::new()
                .get(url)
                .basic_auth(&c.account_sid, Some(&c.auth_token))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let account = &c.account_sid;
    let page = get(format!(
        "/2010-04-01/Accounts/{account}/Recordings.json?PageSize=2"
    ))
    .await;
    assert_eq!(keys(&page), keys(page_schema));
    for item in page["recordings"].as_array().unwrap() {
        assert_eq!(keys(item), keys(resource_schema));
    }
    for o in emu.emulator.call_recordings() {
        let r = get(format!(
            "/2010-04-01/Accounts/{account}/Recordings/{}.json",
            o.sid
        ))
        .await;
        assert_eq!(keys(&r), keys(resource_schema), "{}", o.sid);
        let source = r["source"].as_str().unwrap();
        let sources = &spec["components"]["schemas"]["recording_enum_source"]["enum"];
        assert!(
            sources.as_array().unwrap().iter().any(|s| s == source),
            "{source}"
        );
    }
}
