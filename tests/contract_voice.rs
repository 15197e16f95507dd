//! Contract check of the Voice side: the Twilio client against Twilio's OpenAPI spec of
//! the 2010-04-01 API (`twilio_api_v2010.json`), served by Prism on 127.0.0.1, as
//! `tests/contract.rs` does for Video.
//!
//! Prism validates each request the client makes for call recordings (the account in
//! the path, `PageSize <= 1000`, the `CallSid` and `DateCreated>`/`DateCreated<`
//! filters, Basic auth): the probe, the listing and one recording. The spec's examples
//! decode into `VoiceRecording` with the same values, read from the spec: the listing's
//! items, and the fetched recording, whose `encryption_details` use the spec's names
//! (`encryption_public_key_sid`, `encryption_cek`, `encryption_iv`) and whose `duration`
//! is a string. The media (`…/Recordings/{Sid}.wav`) is not in the spec: not checked
//! here. Skipped without Prism or the spec, except with `CI=true`.

mod common;

use std::time::Instant;

use common::prism::{
    Prism, assert_items_of_some_example, client, compare, fetch_example, param_example,
    prerequisites, richest_list_example, to_json,
};
use serde_json::{Value, json};
use twilio_media_fs::twilio::{Media, MediaFilter, MediaKind, MediaRef};

const SPEC_FILE: &str = "twilio_api_v2010.json";
const RECORDINGS: &str = "/2010-04-01/Accounts/{AccountSid}/Recordings.json";
const RECORDING: &str = "/2010-04-01/Accounts/{AccountSid}/Recordings/{Sid}.json";

/// Fields the Voice read path relies on: the spec's examples must have them.
const FIELDS: &[&str] = &[
    "sid",
    "status",
    "call_sid",
    "channels",
    "duration",
    "date_created",
    "encryption_details",
];

/// What `VoiceRecording` should read from `example`: the same values, with `duration` a
/// number and `encryption_details` under the docs' names the type keeps.
fn as_decoded(example: &Value) -> Value {
    let mut want = example.clone();
    if let Some(d) = example["duration"].as_str() {
        want["duration"] = json!(d.parse::<u64>().expect("duration is a number of seconds"));
    }
    let e = &example["encryption_details"];
    if e.is_object() {
        let pick = |a: &str, b: &str| e.get(a).or_else(|| e.get(b)).cloned();
        want["encryption_details"] = json!({
            "public_key_sid": pick("encryption_public_key_sid", "public_key_sid"),
            "encrypted_cek": pick("encryption_cek", "encrypted_cek"),
            "iv": pick("encryption_iv", "iv"),
        });
    }
    want
}

fn voice_recording(m: &Media) -> &twilio_media_fs::twilio::VoiceRecording {
    match m {
        Media::Voice(r) => r,
        other => panic!("not a call recording: {other:?}"),
    }
}

#[tokio::test]
async fn voice_client_matches_twilio_openapi_spec() {
    let started = Instant::now();
    let Some((spec_file, bin, spec)) = prerequisites(SPEC_FILE) else {
        return;
    };
    let dir = common::tempdir();
    let prism = Prism::start(&bin, &spec_file, dir.path().join("v2010.log"));
    eprintln!("Prism up in {:.1} s", started.elapsed().as_secs_f64());

    let example = fetch_example(&spec, RECORDING);
    for f in FIELDS {
        assert!(
            !example[*f].is_null(),
            "the spec's Recording example has no {f:?}, which this check relies on"
        );
    }
    let account_sid = example["account_sid"].as_str().expect("account_sid");
    let sid = example["sid"].as_str().expect("sid");
    let c = client(&prism.url, account_sid);

    // The cheapest request that proves the credentials may read call recordings.
    c.probe(MediaKind::Voice).await.expect("probe Voice");

    // One recording, as `get RE…` and the mount's lookup fetch it.
    let m = c
        .resource(&MediaRef::voice(sid, None))
        .await
        .expect("fetch a Recording");
    assert_eq!(m.kind(), MediaKind::Voice);
    if let Err(e) = compare("Recording", &to_json(&m), &as_decoded(&example)) {
        panic!("{e}");
    }
    let r = voice_recording(&m);
    assert!(r.created().is_some(), "date_created {:?}", r.date_created);
    let e = r.encryption().expect("the example is encrypted");
    let spec_e = &example["encryption_details"];
    assert_eq!(
        e.encrypted_cek.as_deref(),
        spec_e["encryption_cek"].as_str()
    );
    assert_eq!(e.iv.as_deref(), spec_e["encryption_iv"].as_str());

    // The listing, with the filters the client offers (values from the spec's own
    // parameter examples where it has them, the example's call otherwise).
    let (name, items) = richest_list_example(&spec, RECORDINGS, "recordings");
    assert!(
        !items.is_empty(),
        "the spec has no listing example with items"
    );
    let p = |param: &str| param_example(&spec, RECORDINGS, &name, param);
    let filter = MediaFilter {
        room: items[0]["call_sid"].as_str().map(str::to_owned),
        date_created_after: p("DateCreated>"),
        date_created_before: p("DateCreated<"),
        ..Default::default()
    };
    let listed = c
        .media(MediaKind::Voice, &filter)
        .await
        .expect("list Recordings");
    let decoded: Vec<Value> = listed.iter().map(to_json).collect();
    assert_items_of_some_example(
        &decoded_examples(&spec),
        "Recordings",
        RECORDINGS,
        "recordings",
        &decoded,
    );
    let unfiltered = c
        .media(MediaKind::Voice, &MediaFilter::default())
        .await
        .expect("list Recordings without filters");
    assert!(!unfiltered.iter().any(|m| m.kind() != MediaKind::Voice));

    drop(prism);
    eprintln!(
        "Voice contract check done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The spec with every listing example's items as `VoiceRecording` reads them
/// ([`as_decoded`]), for [`assert_items_of_some_example`].
fn decoded_examples(spec: &Value) -> Value {
    let mut out = json!({ "paths": { RECORDINGS: { "get": { "responses": { "200": {
        "content": { "application/json": { "examples": {} } } } } } } } });
    let examples = &spec["paths"][RECORDINGS]["get"]["responses"]["200"]["content"]["application/json"]
        ["examples"];
    let mut map = serde_json::Map::new();
    for (name, e) in examples.as_object().expect("examples") {
        let items: Vec<Value> = e["value"]["recordings"]
            .as_array()
            .expect("recordings")
            .iter()
            .map(as_decoded)
            .collect();
        map.insert(name.clone(), json!({ "value": { "recordings": items } }));
    }
    out["paths"][RECORDINGS]["get"]["responses"]["200"]["content"]["application/json"]["examples"] =
        Value::Object(map);
    out
}
