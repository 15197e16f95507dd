//! Contract check: the Twilio client against Twilio's own OpenAPI spec of the Video API,
//! served by the Prism mock server (`@stoplight/prism-cli`) on 127.0.0.1.
//!
//! Prism validates every request against the spec (path SID patterns, query enums and
//! bounds such as `PageSize <= 100`, Basic auth) and answers with the spec's examples, so
//! this checks both directions: what the client sends is allowed, and what the spec says
//! Twilio answers decodes into the client's types with the same values. Expected values
//! are read from the spec here, never written down.
//!
//! Two Prism instances run side by side:
//! - `plain` serves the spec file untouched. Lists answer with their first example (an
//!   empty page); single resources and settings with their only example.
//! - `results` serves a copy in which each list endpoint keeps only its example with the
//!   most items, so the listings decode real items (no `Prefer` header, which the client
//!   does not send; no `--dynamic`). Its list calls also use the filters the client offers,
//!   with the values of the spec's own parameter examples, for Prism to validate.
//!
//! Prism comes from `$PRISM`, else `.ci/node/node_modules/.bin/prism` (which `.ci/run`
//! installs), else `prism` on PATH. Without it (or the spec) the test is skipped, except
//! with `CI=true`, where it fails.

mod common;

use std::time::Instant;

use common::prism::{
    Prism, assert_decoded, assert_items, assert_items_of_some_example, client, fetch_example,
    param_example, prerequisites, richest_list_example,
};
use serde_json::Value;
use twilio_media_fs::twilio::{
    CompositionFilter, MediaFilter, MediaKind, MediaRef, RecordingFilter, RoomFilter,
};

const SPEC_FILE: &str = "twilio_video_v1.json";

const RECORDINGS: &str = "/v1/Recordings";
const RECORDING: &str = "/v1/Recordings/{Sid}";
const COMPOSITIONS: &str = "/v1/Compositions";
const COMPOSITION: &str = "/v1/Compositions/{Sid}";
const ROOMS: &str = "/v1/Rooms";
const ROOM: &str = "/v1/Rooms/{Sid}";
const ROOM_RECORDINGS: &str = "/v1/Rooms/{RoomSid}/Recordings";
const RECORDING_SETTINGS: &str = "/v1/RecordingSettings/Default";
const COMPOSITION_SETTINGS: &str = "/v1/CompositionSettings/Default";

/// The list endpoints and the key of their item array.
const LISTS: [(&str, &str); 4] = [
    (RECORDINGS, "recordings"),
    (COMPOSITIONS, "compositions"),
    (ROOMS, "rooms"),
    (ROOM_RECORDINGS, "recordings"),
];

/// Fields the filesystem relies on: the spec's examples must have them (else comparing
/// with the examples would prove little about them).
const RECORDING_FIELDS: &[&str] = &[
    "sid",
    "status",
    "container_format",
    "codec",
    "type",
    "size",
    "duration",
    "date_created",
    "grouping_sids",
];
const COMPOSITION_FIELDS: &[&str] = &[
    "sid",
    "status",
    "format",
    "size",
    "duration",
    "date_created",
    "room_sid",
];
const ROOM_FIELDS: &[&str] = &["sid", "status", "date_created"];
const SETTINGS_FIELDS: &[&str] = &["encryption_enabled", "encryption_key_sid"];

// ---- the spec ----------------------------------------------------------------------

/// A copy of the spec in which each list endpoint keeps only its richest example.
fn results_spec(spec: &Value) -> Value {
    let mut out = spec.clone();
    for (path, key) in LISTS {
        let (name, _) = richest_list_example(spec, path, key);
        let ex = out["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
            ["examples"]
            .as_object_mut()
            .expect("examples");
        ex.retain(|n, _| *n == name);
    }
    out
}

#[tokio::test]
async fn client_matches_twilio_openapi_spec() {
    let started = Instant::now();
    let Some((spec_file, bin, spec)) = prerequisites(SPEC_FILE) else {
        return;
    };

    let dir = common::tempdir();
    let derived = dir.path().join("twilio_video_v1.results.json");
    std::fs::write(&derived, serde_json::to_vec(&results_spec(&spec)).unwrap()).unwrap();
    // Both start at once (Prism takes a second or two to load the spec).
    let (plain, results) = std::thread::scope(|s| {
        let a = s.spawn(|| Prism::start(&bin, &spec_file, dir.path().join("plain.log")));
        let b = s.spawn(|| Prism::start(&bin, &derived, dir.path().join("results.log")));
        (a.join(), b.join())
    });
    let (plain, results) = match (plain, results) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
    };
    eprintln!("Prism up in {:.1} s", started.elapsed().as_secs_f64());

    let recording = fetch_example(&spec, RECORDING);
    let composition = fetch_example(&spec, COMPOSITION);
    let room = fetch_example(&spec, ROOM);
    let str_of = |v: &Value, f: &str| -> String {
        v[f].as_str()
            .unwrap_or_else(|| panic!("example without {f}"))
            .to_string()
    };
    let account_sid = str_of(&recording, "account_sid");
    let room_sid = str_of(&room, "sid");

    // ---- the spec as published: single resources, settings, default (empty) lists ----
    let c = client(&plain.url, &account_sid);

    let r = c
        .recording(&str_of(&recording, "sid"))
        .await
        .expect("fetch Recording");
    assert_decoded("Recording", &r, &recording, RECORDING_FIELDS);
    assert!(r.created().is_some(), "date_created {:?}", r.date_created);
    assert_eq!(
        r.room(),
        recording["grouping_sids"]["room_sid"].as_str(),
        "Recording.room()"
    );
    assert_eq!(
        r.extension(),
        recording["container_format"]
            .as_str()
            .map(str::to_ascii_lowercase)
    );

    let cj = c
        .composition(&str_of(&composition, "sid"))
        .await
        .expect("fetch Composition");
    assert_decoded("Composition", &cj, &composition, COMPOSITION_FIELDS);
    assert!(cj.created().is_some(), "date_created {:?}", cj.date_created);
    assert_eq!(
        cj.completed().is_some(),
        composition["date_completed"].is_string()
    );
    assert_eq!(
        cj.extension(),
        composition["format"].as_str().map(str::to_ascii_lowercase)
    );

    let rm = c.room(&room_sid).await.expect("fetch Room");
    assert_decoded("Room", &rm, &room, ROOM_FIELDS);
    assert!(rm.created().is_some(), "date_created {:?}", rm.date_created);

    let settings = c.recording_settings().await.expect("RecordingSettings");
    let expected = fetch_example(&spec, RECORDING_SETTINGS);
    assert_decoded("RecordingSettings", &settings, &expected, SETTINGS_FIELDS);
    let settings = c.composition_settings().await.expect("CompositionSettings");
    let expected = fetch_example(&spec, COMPOSITION_SETTINGS);
    assert_decoded("CompositionSettings", &settings, &expected, SETTINGS_FIELDS);

    let list = c
        .recordings(&RecordingFilter::default())
        .await
        .expect("list Recordings");
    assert_items_of_some_example(&spec, "Recordings", RECORDINGS, "recordings", &list);
    let list = c
        .compositions(&CompositionFilter::default())
        .await
        .expect("list Compositions");
    assert_items_of_some_example(&spec, "Compositions", COMPOSITIONS, "compositions", &list);
    // The path the filesystem takes, one per kind, reads what the typed calls read.
    for (kind, path, example, fields) in [
        (
            MediaKind::Recording,
            RECORDINGS,
            &recording,
            RECORDING_FIELDS,
        ),
        (
            MediaKind::Composition,
            COMPOSITIONS,
            &composition,
            COMPOSITION_FIELDS,
        ),
    ] {
        let list = c
            .media(kind, &MediaFilter::default())
            .await
            .expect("list media");
        assert_items_of_some_example(&spec, kind.collection(), path, kind.plural(), &list);
        let media = MediaRef::new(kind, str_of(example, "sid"));
        let m = c.resource(&media).await.expect("fetch media");
        assert_eq!(m.kind(), kind);
        assert_decoded(kind.noun(), &m, example, fields);
    }
    let list = c.rooms(&RoomFilter::default()).await.expect("list Rooms");
    assert_items_of_some_example(&spec, "Rooms", ROOMS, "rooms", &list);
    let list = c
        .room_recordings(&room_sid)
        .await
        .expect("list a Room's Recordings");
    assert_items_of_some_example(
        &spec,
        "Room Recordings",
        ROOM_RECORDINGS,
        "recordings",
        &list,
    );

    // ---- lists with items, through the client's filters ----
    let c = client(&results.url, &account_sid);

    let (name, items) = richest_list_example(&spec, RECORDINGS, "recordings");
    assert!(
        !items.is_empty(),
        "the spec has no Recordings list example with items"
    );
    let p = |param: &str| param_example(&spec, RECORDINGS, &name, param);
    let filter = RecordingFilter {
        status: p("Status"),
        grouping_sid: p("GroupingSid"),
        source_sid: p("SourceSid"),
        media_type: p("MediaType"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.recordings(&filter).await.expect("list Recordings");
    assert_items("Recordings", &list, &items, RECORDING_FIELDS);
    for (r, e) in list.iter().zip(&items) {
        assert_eq!(r.room(), e["grouping_sids"]["room_sid"].as_str());
        assert!(r.created().is_some(), "date_created {:?}", r.date_created);
    }

    let (name, items) = richest_list_example(&spec, COMPOSITIONS, "compositions");
    assert!(
        !items.is_empty(),
        "the spec has no Compositions list example with items"
    );
    let p = |param: &str| param_example(&spec, COMPOSITIONS, &name, param);
    let filter = CompositionFilter {
        status: p("Status"),
        room_sid: p("RoomSid"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.compositions(&filter).await.expect("list Compositions");
    assert_items("Compositions", &list, &items, COMPOSITION_FIELDS);

    let (name, items) = richest_list_example(&spec, ROOMS, "rooms");
    assert!(
        !items.is_empty(),
        "the spec has no Rooms list example with items"
    );
    let p = |param: &str| param_example(&spec, ROOMS, &name, param);
    let filter = RoomFilter {
        status: p("Status"),
        unique_name: p("UniqueName"),
        date_created_after: p("DateCreatedAfter"),
        date_created_before: p("DateCreatedBefore"),
    };
    let list = c.rooms(&filter).await.expect("list Rooms");
    assert_items("Rooms", &list, &items, ROOM_FIELDS);

    let (_, items) = richest_list_example(&spec, ROOM_RECORDINGS, "recordings");
    assert!(
        !items.is_empty(),
        "the spec has no Room Recordings list example with items"
    );
    let list = c
        .room_recordings(&room_sid)
        .await
        .expect("list a Room's Recordings");
    assert_items("Room Recordings", &list, &items, RECORDING_FIELDS);
    for (r, e) in list.iter().zip(&items) {
        assert_eq!(r.room(), e["grouping_sids"]["room_sid"].as_str());
    }

    drop((plain, results));
    eprintln!(
        "contract check done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
