//! The HTTPS intake (RFC 8460 §5.4): `POST` of `application/tlsrpt+gzip` or
//! `application/tlsrpt+json` at any path (the one published in `rua=https://…`). A router that
//! runs alone (`mtasts report receive`) or that `mtasts serve` mounts.
//!
//! The report is committed before the `2xx` (RFC 8460 §5.4: a 2xx means received); a report
//! already stored is acknowledged the same way. Refusals say why, in the body:
//!
//! | status | when |
//! |---|---|
//! | 200 | stored, or already stored (`{"id": …, "duplicate": …}`) |
//! | 400 | not a valid report (the parser's words: JSON path and rule), broken gzip |
//! | 413 | body or decompressed report over the limit |
//! | 415 | a `Content-Type` §5.4 does not define |
//! | 408 | the body did not arrive within the time limit (slow clients) |
//! | 429 | this client sent too many reports in the last minute (`Retry-After`) |
//! | 503 | the database is unavailable (`Retry-After`; the sender retries) |

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::ingest::{IngestError, Ingestor};
use crate::intake::IntakeError;

/// Limits of the HTTPS intake.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpLimits {
    /// Reports one client address may post per minute (a burst of this many, refilled evenly).
    pub per_client_per_minute: u32,
    /// Time allowed for the whole body to arrive.
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { per_client_per_minute: 60, body_timeout: Duration::from_secs(30) }
    }
}

/// How [`serve`] treats connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Connections served at once; more are refused until one ends.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive (slow clients are cut off).
    pub header_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { max_connections: 1024, header_timeout: Duration::from_secs(10) }
    }
}

/// The client's address, set per connection by [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The name the client asked for in TLS SNI (lower case), set per connection by [`serve`] on
/// TLS connections; `None` without SNI or without TLS.
#[derive(Clone, Debug, Default)]
pub struct TlsServerName(pub Option<Arc<str>>);

#[derive(Clone)]
struct AppState {
    ingestor: Ingestor,
    limits: HttpLimits,
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
}

/// The intake routes: `POST` anywhere takes a report; `GET` says what this is.
pub fn router(ingestor: Ingestor, limits: HttpLimits) -> Router {
    let state = AppState { ingestor, limits, buckets: Arc::default() };
    Router::new()
        .route("/", post(receive).get(about))
        .route("/{*path}", post(receive).get(about))
        .with_state(state)
}

async fn about() -> &'static str {
    "TLS-RPT report receiver (RFC 8460 §5.4): POST application/tlsrpt+gzip or application/tlsrpt+json\n"
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

fn retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Token bucket per client address: true when the client may post now.
fn admit(state: &AppState, ip: IpAddr) -> bool {
    let rate = f64::from(state.limits.per_client_per_minute.max(1));
    let now = Instant::now();
    let Ok(mut buckets) = state.buckets.lock() else { return true };
    if buckets.len() > 100_000 {
        // Forget clients whose bucket has refilled: they are as new.
        buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
    }
    let (tokens, at) = buckets.entry(ip).or_insert((rate, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate / 60.0).min(rate);
    *at = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

async fn receive(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    request: Request,
) -> Response {
    let addr = client.map(|Extension(ClientAddr(a))| a);
    if let Some(a) = addr
        && !admit(&state, a.ip())
    {
        let r = text(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} reports a minute from {}; try again later",
                state.limits.per_client_per_minute,
                a.ip()
            ),
        );
        return retry_after(r, 60);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let max = state.ingestor.limits().max_message;
    let body = tokio::time::timeout(
        state.limits.body_timeout,
        axum::body::to_bytes(request.into_body(), max),
    )
    .await;
    let body = match body {
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s", state.limits.body_timeout.as_secs()),
            );
        }
        Ok(Err(_)) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than the {max}-byte limit"),
            );
        }
        Ok(Ok(b)) => b,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let client = addr.map(|a| a.ip().to_string());
    let result = state.ingestor.https(&content_type, &body, client.as_deref(), now).await;
    if let Err(e) = &result {
        crate::ingest::count_refusal("https", e);
    }
    match result {
        Ok(r) => {
            tracing::info!(id = r.id, duplicate = r.duplicate, organization = %r.organization, "report received by HTTPS");
            let doc =
                serde_json::json!({"id": r.id, "duplicate": r.duplicate, "report_id": r.report_id});
            (StatusCode::OK, axum::Json(doc)).into_response()
        }
        Err(IngestError::Rejected(e)) => {
            let status = match &e {
                IntakeError::MediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                IntakeError::MessageTooLarge { .. } | IntakeError::ReportTooLarge { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            tracing::info!(error = %e, "report refused");
            text(status, e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "report not stored");
            retry_after(
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the report could not be stored; try again later",
                ),
                300,
            )
        }
    }
}

/// Renders the metrics in Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// `GET /metrics` in Prometheus text format.
pub fn metrics_router(render: MetricsRender) -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()) }
        }),
    )
}

/// Serves `router` on `listener` (TLS when `tls` is given) until `shutdown` completes; each
/// request carries its connection's [`ClientAddr`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let connections = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            // Full: refuse at once rather than queue (the sender retries later).
            tracing::warn!(%peer, "too many connections; refused");
            drop(tcp);
            continue;
        };
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn = hyper::server::conn::http1::Builder::new();
            // A client that trickles its headers is cut off (slowloris); the body has its own
            // limit (`HttpLimits::body_timeout`).
            conn.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(options.header_timeout);
            // The connection's ClientAddr and TlsServerName go into every request (cheaper than
            // `Router::layer` per connection, which rebuilds every route each time).
            let with_connection = |sni: Option<Arc<str>>| {
                use tower::ServiceExt as _;
                hyper_util::service::TowerToHyperService::new(router.clone().map_request(
                    move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ClientAddr(peer));
                        req.extensions_mut().insert(TlsServerName(sni.clone()));
                        req
                    },
                ))
            };
            let result = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let sni = stream.get_ref().1.server_name().map(|n| {
                                Arc::<str>::from(n.trim_end_matches('.').to_ascii_lowercase())
                            });
                            let service = with_connection(sni);
                            conn.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => {
                    let service = with_connection(None);
                    conn.serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// A TLS acceptor for `chain` and `key` (PEM files of `mtasts report receive --tls-cert`,
/// `--tls-key`), TLS 1.2 and 1.3, ring.
pub fn tls_acceptor(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<tokio_rustls::TlsAcceptor, rustls::Error> {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
