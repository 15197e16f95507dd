//! `serve`: the filesystem's tree over HTTP, for players, browsers and machines without
//! FUSE. The second front-end over the same [`TwilioFs`] (and so the same read core,
//! cache, prefetcher, retry budget and `.stats`) as the mount: a request walks the tree
//! name by name as the kernel would (`lookup`, then `open`/`read`/`release`, or
//! `opendir`/`readdir`), and gives back the lookups it counted when it is done.
//!
//! ```text
//! GET  /                              the top directories (HTML, or JSON)
//! GET  /recordings/RTxx.mka           the decrypted file; Range, conditional requests
//! GET  /rooms/RMxx/                   a room's files, with players
//! GET  /recordings/RTxx.mka?play      a page with the file's player
//! GET  /.stats                        what the read core is doing (JSON)
//! GET  /healthz                       200 `ok`, without credentials (load balancers)
//! ```
//!
//! This module owns the routes and what each answers. The pure parts are beside it:
//! [`path`] (URL path → names), [`headers`] (conditional requests, media types),
//! [`status`] (errors → statuses), [`page`] (listings), [`auth`] (credentials).
//! [`listen`] owns sockets, TLS and connection limits. It never writes a byte of a
//! file anywhere but to the client, and never logs credentials.

pub mod auth;
pub mod headers;
pub mod listen;
pub mod page;
pub mod path;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::fs::{self, Attr, Kind, ROOT, TwilioFs};
use crate::http_body;
use auth::Auth;
use headers::{Answer, Conditions};
use page::{Item, Listing};

/// Password checks (bcrypt) run at once, off the async workers; more are answered 503.
const BCRYPTS_AT_ONCE: usize = 2;

/// Directory listings made at once (each holds its whole page in memory); more wait.
const LISTINGS_AT_ONCE: usize = 4;

/// What every request sees.
struct Gateway {
    fs: Arc<TwilioFs>,
    auth: Arc<Auth>,
    /// `https` when the server speaks TLS: the scheme of the `vlc` lines.
    scheme: &'static str,
    bcrypts: Arc<tokio::sync::Semaphore>,
    listings: tokio::sync::Semaphore,
}

/// The routes of `serve` over `fs`, requiring `auth`.
pub fn router(fs: Arc<TwilioFs>, auth: Auth, tls: bool) -> Router {
    let gateway = Arc::new(Gateway {
        fs,
        auth: Arc::new(auth),
        scheme: if tls { "https" } else { "http" },
        bcrypts: Arc::new(tokio::sync::Semaphore::new(BCRYPTS_AT_ONCE)),
        listings: tokio::sync::Semaphore::new(LISTINGS_AT_ONCE),
    });
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(answer)
        .with_state(gateway)
}

/// Lookups counted while a request walked the tree, given back when it is done (the
/// kernel's `forget`), so that the inode table stays bounded however many requests
/// come.
struct Walked {
    fs: Arc<TwilioFs>,
    inos: Vec<u64>,
}

impl Drop for Walked {
    fn drop(&mut self) {
        self.fs.forget_all(self.inos.iter().map(|&ino| (ino, 1)));
    }
}

/// An open directory, released when its listing is done or the request is dropped
/// (a client that goes away).
struct OpenDir {
    fs: Arc<TwilioFs>,
    fh: u64,
}

impl Drop for OpenDir {
    fn drop(&mut self) {
        self.fs.releasedir(self.fh);
    }
}

/// An open file, released when the response that reads it is done or dropped.
struct OpenFile {
    fs: Arc<TwilioFs>,
    ino: u64,
    fh: u64,
    _walked: Walked,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.fs.release(self.fh);
    }
}

/// Every request but `/healthz`; logged at debug level (`-vv`) as its method, path
/// and status: never a header, so never a credential.
async fn answer(
    State(g): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    request: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let response = respond(g, method.clone(), uri, request).await;
    tracing::debug!("{method} {path} {}", response.status().as_u16());
    response
}

async fn respond(g: Arc<Gateway>, method: Method, uri: Uri, request: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD: the tree is read-only\n",
        )
            .into_response();
    }
    let authorization = request
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let allowed = match g.auth.quick(authorization) {
        Some(allowed) => allowed,
        None => {
            // A password not seen before: bcrypt, off the async workers, a few at once,
            // so that a flood of wrong passwords cannot stall the streams.
            let Ok(permit) = g.bcrypts.clone().try_acquire_owned() else {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many password checks at once: try again\n",
                );
            };
            let (auth, value) = (g.auth.clone(), authorization.map(<[u8]>::to_vec));
            let checked = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                auth.allows(value.as_deref())
            });
            checked.await.unwrap_or(false)
        }
    };
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, g.auth.challenge())],
            "credentials required\n",
        )
            .into_response();
    }
    // Without credentials the server is for this machine only; a page elsewhere whose
    // name was made to resolve to 127.0.0.1 (DNS rebinding) must not read it.
    if !g.auth.required() && !local_host(&request) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this server has no credentials set, so it answers requests for localhost, \
             127.0.0.1 or [::1] only\n",
        );
    }
    let (names, slash) = match path::names(uri.path()) {
        Ok(found) => found,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("{e}\n")),
    };
    let query = uri.query().unwrap_or("");
    if names.len() == 1 && names[0] == fs::STATS_NAME {
        return stats(&g.fs);
    }
    let mut walked = Walked {
        fs: g.fs.clone(),
        inos: Vec::new(),
    };
    let mut attr = match g.fs.getattr(ROOT) {
        Ok(a) => a,
        Err(e) => return failed(&e),
    };
    for name in &names {
        attr = match g.fs.lookup(attr.ino, name).await {
            Ok(a) => a,
            Err(e) => return failed(&e),
        };
        walked.inos.push(attr.ino);
    }
    let path = format!("/{}", names.join("/"));
    let origin = origin(&request, g.scheme);
    match attr.kind {
        Kind::Dir if !slash && !names.is_empty() => {
            let to = format!("{path}/{}", if query.is_empty() { "" } else { "?" });
            let to = format!("{to}{query}");
            (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response()
        }
        Kind::Dir => {
            let dir_path = if names.is_empty() {
                "/".to_owned()
            } else {
                format!("{path}/")
            };
            let _slot = g.listings.acquire().await.expect("never closed");
            match listing(&g.fs, attr.ino, &dir_path).await {
                Ok(listing) if wants_json(&request, query) => {
                    typed(page::json(&listing), "application/json", &method)
                }
                Ok(listing) => typed(
                    page::html(&listing, &origin),
                    "text/html; charset=utf-8",
                    &method,
                ),
                Err(e) => failed(&e),
            }
        }
        Kind::File if query == "play" || query.starts_with("play&") => {
            let name = names.last().cloned().unwrap_or_default();
            let item = describe(&g.fs, &attr, &name, path).await;
            typed(
                page::player_page(&item, &origin),
                "text/html; charset=utf-8",
                &method,
            )
        }
        Kind::File => {
            file(
                g.fs.clone(),
                attr.ino,
                names.last().map_or("", |n| n),
                walked,
                &request,
                &method,
            )
            .await
        }
    }
}

/// A file: opened (so that its size is exact and a key that does not fit fails here,
/// before any status is sent), then answered per [`headers::answer`].
async fn file(
    fs: Arc<TwilioFs>,
    ino: u64,
    name: &str,
    walked: Walked,
    request: &HeaderMap,
    method: &Method,
) -> Response {
    let opened = match fs.open(ino).await {
        Ok(o) => o,
        Err(e) => return failed(&e),
    };
    let open = Arc::new(OpenFile {
        fs: fs.clone(),
        ino,
        fh: opened.fh,
        _walked: walked,
    });
    let attr = match fs.getattr(ino) {
        Ok(a) => a,
        Err(e) => return failed(&e),
    };
    let len = attr.size;
    let sid = name.split('.').next().unwrap_or(name);
    let etag = headers::etag(sid, len);
    let text = |h: header::HeaderName| request.get(h).and_then(|v| v.to_str().ok());
    let conditions = Conditions {
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: text(header::IF_MODIFIED_SINCE),
        range: text(header::RANGE),
        if_range: text(header::IF_RANGE),
    };
    let answer = headers::answer(conditions, &etag, attr.mtime, len);
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::ETAG, value(&etag));
    h.insert(
        header::LAST_MODIFIED,
        value(&headers::http_date(attr.mtime)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    let (status, start, end) = match answer {
        Answer::NotModified => {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
        Answer::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            h.insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return response;
        }
        Answer::Whole => (StatusCode::OK, 0, len),
        Answer::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
    };
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(headers::content_type(name)),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&headers::disposition(name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{}/{len}", end - 1)),
        );
    }
    if method == Method::HEAD || start == end {
        return response;
    }
    let reader = open.clone();
    let path = name.to_owned();
    let body = http_body::chunks(
        start,
        end,
        move |at, n| {
            let open = reader.clone();
            async move { open.fs.read(open.ino, open.fh, at, n as u32).await }
        },
        move |failure| tracing::warn!("GET {path}: {failure}: response cut short"),
    );
    *response.body_mut() = Body::from_stream(body);
    response
}

/// A directory's entries with what the listings know of each (never a request per
/// entry: sizes and fields come from the listings and earlier opens); a room's own
/// fields come with its first page (one request for the room, then kept).
async fn listing(fs: &Arc<TwilioFs>, ino: u64, dir_path: &str) -> fs::Result<Listing> {
    let open = OpenDir {
        fs: fs.clone(),
        fh: fs.opendir(ino)?,
    };
    let entries = fs.readdir(ino, open.fh, 0).await?;
    drop(open);
    let attributes = fs
        .attributes(ino)
        .await
        .map(|a| fields(&a))
        .unwrap_or_default();
    let mut items = Vec::new();
    for e in entries.iter().filter(|e| e.name != "." && e.name != "..") {
        let Ok(attr) = fs.getattr(e.ino) else {
            continue; // dropped from the listings meanwhile
        };
        let href = format!(
            "{dir_path}{}{}",
            e.name,
            if e.kind == Kind::Dir { "/" } else { "" }
        );
        items.push(describe(fs, &attr, &e.name, href).await);
    }
    Ok(Listing {
        path: dir_path.to_owned(),
        attributes,
        entries: items,
    })
}

/// One entry of a listing.
async fn describe(fs: &Arc<TwilioFs>, attr: &Attr, name: &str, href: String) -> Item {
    if attr.kind == Kind::Dir {
        return Item {
            name: name.to_owned(),
            href,
            kind: "directory",
            size: None,
            size_exact: false,
            date: (attr.mtime > UNIX_EPOCH).then(|| headers::http_date(attr.mtime)),
            codec: None,
            duration: None,
            content_type: None,
            player: None,
            attributes: BTreeMap::new(),
        };
    }
    let attributes = fs
        .attributes(attr.ino)
        .await
        .map(|a| fields(&a))
        .unwrap_or_default();
    let codec = attributes.get("codec").cloned();
    let kind = match name.split_at(2.min(name.len())).0 {
        "RT" => "recording",
        "CJ" => "composition",
        "RE" => "call recording",
        _ => "file",
    };
    Item {
        name: name.to_owned(),
        href,
        kind,
        size: Some(attr.size),
        size_exact: attr.exact,
        date: attributes
            .get("date_created")
            .cloned()
            .or_else(|| Some(headers::http_date(attr.mtime))),
        duration: attributes.get("duration").and_then(|d| d.parse().ok()),
        content_type: Some(headers::content_type(name)),
        player: Some(headers::player(name)),
        codec,
        attributes,
    }
}

fn fields(attrs: &[(&'static str, String)]) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn stats(fs: &TwilioFs) -> Response {
    let text = serde_json::to_string_pretty(&fs.stats()).expect("stats serialize");
    let mut r = typed(text + "\n", "application/json", &Method::GET);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `?format=json`, or an `Accept` that asks for JSON and not HTML.
fn wants_json(request: &HeaderMap, query: &str) -> bool {
    if query.split('&').any(|q| q == "format=json") {
        return true;
    }
    let accept = request
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// Whether the request's `Host` is a loopback name (`localhost`, `127.x.x.x`, `[::1]`,
/// with or without a port); no `Host` (HTTP/1.0) counts as local.
fn local_host(request: &HeaderMap) -> bool {
    let Some(host) = request.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `http://host:port` as the client reached us (its `Host`), for `vlc` lines.
fn origin(request: &HeaderMap, scheme: &str) -> String {
    let host = request
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

fn typed(body: String, content_type: &'static str, method: &Method) -> Response {
    let len = body.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Listings differ by Accept; pages load nothing but this server's media and styles.
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; media-src 'self'; style-src 'unsafe-inline'"),
    );
    r
}

/// A failure as its status and a one-line reason (the error names the SID; nothing
/// in it is a secret).
fn failed(e: &fs::Error) -> Response {
    let status = status::of(e);
    if status.is_server_error() {
        tracing::warn!("{e}");
    }
    plain(status, &format!("{e}\n"))
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
