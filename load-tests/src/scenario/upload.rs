//! The uploads of the `upload` scenario: K uploaders each `POST` the same health file
//! (raw body, `Content-Type: application/xml`) to `--upload-path` in a loop while the ask
//! sessions run, and count `201` answers, the `records` they report, latency and throughput.
//! The contract is the health-service one: `POST /v1/health/files?name=export.xml` → 201 JSON
//! with `records`, or 200 with the stored file when the same bytes were uploaded before (the
//! server still reads and parses the whole body to know that, so it counts as an upload).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::RunContext;
use crate::http::{build_head, Conn, HttpError};
use crate::mcp::ClientConfig;
use crate::stats::{rate, ErrorCounts, Latencies, LatencySummary};

/// Largest answer read from the upload route.
const MAX_ANSWER: usize = 1 << 20;

/// Pause after a failed upload, so a missing route is not hammered.
const BACKOFF_AFTER_ERROR: Duration = Duration::from_millis(200);

/// What all uploaders did.
#[derive(Debug, Default)]
pub struct UploadResult {
    latency: Latencies,
    records: u64,
    duplicates: u64,
    errors: ErrorCounts,
    bytes: u64,
}

/// Upload figures for the report.
#[derive(Debug, Clone, Serialize)]
pub struct UploadFigures {
    /// The file's size, bytes.
    pub file_bytes: u64,
    /// Concurrent uploaders.
    pub uploaders: usize,
    /// Uploads answered 201 (stored) or 200 (the same file was stored before).
    pub ok: u64,
    /// Of those, the ones answered 200.
    pub duplicates: u64,
    /// Records the server said it parsed, summed over the uploads.
    pub records: u64,
    /// Request-to-answer time of the successful uploads.
    pub latency_ms: Option<LatencySummary>,
    /// Uploaded MiB/s over the calling window (successful uploads only).
    pub mib_per_sec: f64,
    /// Failed uploads by kind (`upload_http_404`, `upload_connection`, ...).
    pub errors: ErrorCounts,
}

impl UploadResult {
    fn merge(&mut self, o: &UploadResult) {
        self.latency.merge(&o.latency);
        self.records += o.records;
        self.duplicates += o.duplicates;
        self.errors.merge(&o.errors);
        self.bytes += o.bytes;
    }

    /// The report's figures over the calling `window`.
    pub fn figures(&self, file_bytes: u64, uploaders: usize, window: Duration) -> UploadFigures {
        UploadFigures {
            file_bytes,
            uploaders,
            ok: self.latency.count(),
            records: self.records,
            duplicates: self.duplicates,
            latency_ms: self.latency.summary(),
            mib_per_sec: rate(self.bytes, window) / (1024.0 * 1024.0),
            errors: self.errors.clone(),
        }
    }

    /// Failed uploads by kind.
    pub fn errors(&self) -> &ErrorCounts {
        &self.errors
    }
}

#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("answer: {0}")]
    Answer(String),
}

impl UploadError {
    fn kind(&self) -> String {
        match self {
            UploadError::Http(HttpError::Connect { .. }) => "upload_connect".into(),
            UploadError::Http(HttpError::Protocol(_)) | UploadError::Answer(_) => {
                "upload_protocol".into()
            }
            UploadError::Http(_) => "upload_connection".into(),
            UploadError::Status(s) => format!("upload_http_{s}"),
        }
    }
}

/// A successful upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Uploaded {
    records: u64,
    /// Answered 200: these bytes were stored before.
    duplicate: bool,
}

/// The `records` count of a 201 (or 200) answer.
pub fn records_of(answer: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(answer).ok()?;
    v.get("records")?.as_u64()
}

async fn upload_once(
    client: &ClientConfig,
    path: &str,
    body: &[u8],
) -> Result<Uploaded, UploadError> {
    let t = &client.target;
    let mut headers = vec![
        ("Content-Type", "application/xml"),
        ("Accept", "application/json"),
    ];
    if let Some(auth) = &client.authorization {
        headers.push(("Authorization", auth.as_str()));
    }
    let head = build_head("POST", &t.authority, path, &headers, Some(body.len()));
    // A fresh connection per upload: the answer may close it, and uploads are few and big.
    let mut conn = Conn::connect(t.addr).await?;
    let response = conn.send_parts(&head, body).await?;
    let mut framing = response.framing;
    let mut answer = Vec::new();
    while let Some(piece) = conn.body_piece(&mut framing).await? {
        if answer.len() + piece.len() > MAX_ANSWER {
            return Err(UploadError::Answer("answer too large".into()));
        }
        answer.extend_from_slice(&piece);
    }
    let duplicate = match response.status {
        201 => false,
        200 => true,
        other => return Err(UploadError::Status(other)),
    };
    let records = records_of(&answer)
        .ok_or_else(|| UploadError::Answer("no `records` in the answer".into()))?;
    Ok(Uploaded { records, duplicate })
}

async fn uploader(
    ctx: RunContext,
    path: String,
    body: Arc<Vec<u8>>,
    mut go: watch::Receiver<Option<Instant>>,
) -> UploadResult {
    let mut out = UploadResult::default();
    let deadline = match go.wait_for(Option::is_some).await {
        Ok(d) => d.unwrap_or_else(Instant::now),
        Err(_) => return out,
    };
    let timeout = ctx.config.timeout;
    while Instant::now() < deadline {
        let start = Instant::now();
        match tokio::time::timeout(timeout, upload_once(&ctx.client, &path, &body)).await {
            Ok(Ok(up)) => {
                out.latency.record(start.elapsed());
                out.records += up.records;
                out.duplicates += u64::from(up.duplicate);
                out.bytes += body.len() as u64;
            }
            Ok(Err(e)) => {
                out.errors.add(e.kind());
                tokio::time::sleep(BACKOFF_AFTER_ERROR).await;
            }
            Err(_) => out.errors.add("upload_timeout".into()),
        }
    }
    out
}

/// Running uploaders; [`Uploads::join`] collects them.
#[derive(Debug)]
pub struct Uploads {
    tasks: Vec<tokio::task::JoinHandle<UploadResult>>,
    /// Size of the file posted.
    pub file_bytes: u64,
}

/// Reads the file and starts the uploaders; they wait for `go` like the sessions.
pub fn start(
    ctx: &RunContext,
    go: &watch::Receiver<Option<Instant>>,
) -> Result<Option<Uploads>, std::io::Error> {
    let Some(cfg) = &ctx.config.upload else {
        return Ok(None);
    };
    let body = Arc::new(std::fs::read(&cfg.file)?);
    let tasks = (0..cfg.uploaders)
        .map(|_| {
            tokio::spawn(uploader(
                ctx.clone(),
                cfg.path.clone(),
                body.clone(),
                go.clone(),
            ))
        })
        .collect();
    Ok(Some(Uploads {
        tasks,
        file_bytes: body.len() as u64,
    }))
}

impl Uploads {
    /// Waits for every uploader and merges their results.
    pub async fn join(self) -> UploadResult {
        let mut all = UploadResult::default();
        for task in self.tasks {
            match task.await {
                Ok(r) => all.merge(&r),
                Err(_) => all.errors.add("upload_panic".into()),
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-request server: reads head and body, answers `answer`, returns what it read.
    async fn one_shot(answer: String) -> (ClientConfig, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                assert!(n > 0, "client closed early");
            }
            sock.write_all(answer.as_bytes()).await.unwrap();
            got
        });
        let client = ClientConfig {
            target: crate::target::resolve(&format!("http://{addr}/mcp"), false).unwrap(),
            authorization: Some("Bearer t0k".into()),
            timeout: Duration::from_secs(5),
        };
        (client, task)
    }

    fn json_answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn an_upload_sends_the_raw_file_as_xml_and_reads_records_from_the_201() {
        let (client, server) = one_shot(json_answer("201 Created", "{\"records\":42}")).await;
        let file = vec![b'x'; 100_000];
        let up = upload_once(&client, "/v1/health/files?name=export.xml", &file)
            .await
            .unwrap();
        assert_eq!(
            up,
            Uploaded {
                records: 42,
                duplicate: false
            }
        );
        let got = server.await.unwrap();
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("POST /v1/health/files?name=export.xml HTTP/1.1\r\n"));
        assert!(text.contains("Content-Type: application/xml\r\n"));
        assert!(text.contains("Authorization: Bearer t0k\r\n"));
        assert!(text.contains("Content-Length: 100000\r\n"));
        assert!(got.ends_with(&file), "the body is the file, unchanged");
    }

    #[tokio::test]
    async fn a_200_for_bytes_stored_before_is_a_duplicate_upload_not_an_error() {
        let answer = json_answer("200 OK", "{\"file_id\":\"f1\",\"records\":42}");
        let (client, server) = one_shot(answer).await;
        let up = upload_once(
            &client,
            "/v1/health/files?name=export.xml",
            b"<HealthData/>",
        )
        .await
        .unwrap();
        assert_eq!(
            up,
            Uploaded {
                records: 42,
                duplicate: true
            }
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_route_is_an_upload_http_error() {
        let (client, server) =
            one_shot("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()).await;
        let err = upload_once(&client, "/v1/health/files?name=export.xml", b"<x/>")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "upload_http_404");
        server.await.unwrap();
    }

    #[test]
    fn records_come_from_the_201_answer() {
        assert_eq!(
            records_of(br#"{"file_id":"f1","records":1234}"#),
            Some(1234)
        );
        assert_eq!(records_of(br#"{"records":"many"}"#), None);
        assert_eq!(records_of(b"<html>"), None);
    }
}
