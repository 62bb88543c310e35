//! `HealthParser`: the parser pool. n `SyncArbiter` threads parse uploads as their bytes arrive
//! and store each result in one transaction. The pool is bounded by a semaphore of in-flight
//! jobs (queued + running), because the SyncArbiter queue itself is unbounded (rust-stack.md
//! §4.3); a full pool refuses at once. Panics are caught per job: one would kill the thread.

use std::{
    io::{self, Read, Write},
    panic::{catch_unwind, AssertUnwindSafe},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::SystemTime,
};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use bytes::{Buf, Bytes};
use dashmap::DashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::{
    health::{self, Limits, ParseError},
    store::{AuditAction, HealthStore, Inserted, NewFile, StoreError, StoreFactory},
};

/// With `test_hooks` on, a file of this name makes the parser panic (to test recovery).
pub const PANIC_HOOK_NAME: &str = "__panic_test_hook__";

/// Chunks buffered between the HTTP body and a parser thread (each as large as the network
/// delivers it, typically ≤ 64 KiB): the async side waits when the parser falls behind.
const BODY_CHANNEL_CHUNKS: usize = 16;

/// A piece of an upload, or why the body broke off.
pub type Chunk = Result<Bytes, String>;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Parser threads.
    pub workers: usize,
    /// Uploads in flight (queued + parsing); more are refused with "busy".
    pub queue: usize,
    /// Parser limits (zip decompression, skipped records, ...).
    pub limits: Limits,
    /// Largest gzip-decoded body, in bytes.
    pub max_decoded_bytes: u64,
    /// Keep each stored file's bytes here as `<file id>` (`keep_raw_uploads`).
    pub raw_dir: Option<PathBuf>,
    /// Enable test-only behaviour ([`PANIC_HOOK_NAME`]).
    pub test_hooks: bool,
    /// `Retry-After` suggested when the pool is full, in seconds.
    pub retry_after_secs: u64,
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the health parser is busy with {in_flight} uploads; retry in {retry_after_secs} s")]
    Busy {
        /// Uploads in flight.
        in_flight: usize,
        /// Suggested wait.
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("the upload is larger than the limit of {limit} bytes; split the export or upload export.xml alone")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    #[error("storing the file failed: {0}")]
    Store(#[from] StoreError),
    #[error("the parser crashed on this file ({0}); nothing was stored. Please report the file's format")]
    Panicked(String),
    #[error("the parser pool is not running")]
    Unavailable,
}

/// One upload in flight, for `/admin/status` and progress notifications.
#[derive(Debug)]
pub struct JobState {
    /// Pool-local job number.
    pub id: u64,
    /// Owner principal name.
    pub owner: String,
    /// File name given.
    pub name: String,
    started: SystemTime,
    received: AtomicU64,
    parsed: AtomicU64,
    running: AtomicBool,
}

/// A job as `/admin/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobSnapshot {
    /// Job number.
    pub id: u64,
    /// Owner principal name.
    pub owner: String,
    /// File name given.
    pub name: String,
    /// `queued` or `parsing`.
    pub state: &'static str,
    /// Body bytes handed to the parser so far.
    pub received_bytes: u64,
    /// Bytes the parser has consumed so far (reported once per MiB).
    pub parsed_bytes: u64,
    /// Seconds since the upload started.
    pub elapsed_secs: u64,
}

impl JobState {
    /// Body bytes handed to the parser so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Bytes parsed so far.
    pub fn parsed(&self) -> u64 {
        self.parsed.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            id: self.id,
            owner: self.owner.clone(),
            name: self.name.clone(),
            state: if self.running.load(Ordering::Relaxed) {
                "parsing"
            } else {
                "queued"
            },
            received_bytes: self.received(),
            parsed_bytes: self.parsed(),
            elapsed_secs: self.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
        }
    }
}

type Jobs = Arc<DashMap<u64, Arc<JobState>>>;

/// A parse job: the body's receiving end and the slot it holds.
struct ParseJob {
    job: Arc<JobState>,
    gzip: bool,
    body: mpsc::Receiver<Chunk>,
    jobs: Jobs,
    _permit: OwnedSemaphorePermit,
}

impl Drop for ParseJob {
    fn drop(&mut self) {
        self.jobs.remove(&self.job.id);
    }
}

impl Message for ParseJob {
    type Result = Result<Inserted, UploadError>;
}

/// One parser thread with its own store connection.
pub struct HealthParser {
    settings: Arc<PoolSettings>,
    factory: StoreFactory,
    store: Option<Box<dyn HealthStore>>,
}

impl Actor for HealthParser {
    type Context = SyncContext<Self>;
}

impl Handler<ParseJob> for HealthParser {
    type Result = Result<Inserted, UploadError>;

    /// Parses, stores, audits. A panic fails this job only and the thread lives on.
    fn handle(&mut self, mut msg: ParseJob, _: &mut SyncContext<Self>) -> Self::Result {
        msg.job.running.store(true, Ordering::Relaxed);
        let outcome = match catch_unwind(AssertUnwindSafe(|| self.run(&mut msg))) {
            Ok(r) => r,
            Err(panic) => {
                let why = crate::store::worker_panic_message(&*panic);
                tracing::error!(job = msg.job.id, name = %msg.job.name, panic = %why, "health parser panicked; the file was not stored");
                // The store may have been mid-transaction: reconnect for the next job.
                self.store = None;
                Err(UploadError::Panicked(why))
            }
        };
        if let Err(e) = &outcome {
            let detail: String = format!("refused {:?}: {e}", msg.job.name)
                .chars()
                .take(500)
                .collect();
            if let Ok(store) = self.store() {
                if let Err(audit) =
                    store.audit(&msg.job.owner, AuditAction::Upload, None, Some(&detail))
                {
                    tracing::warn!(error = %audit, "could not audit a refused upload");
                }
            }
        }
        outcome
    }
}

impl HealthParser {
    fn store(&mut self) -> Result<&mut (dyn HealthStore + 'static), StoreError> {
        if self.store.is_none() {
            self.store = Some((self.factory)()?);
        }
        self.store.as_deref_mut().ok_or(StoreError::Unavailable)
    }

    fn run(&mut self, msg: &mut ParseJob) -> Result<Inserted, UploadError> {
        let job = msg.job.clone();
        let settings = self.settings.clone();
        let started = actix::clock::Instant::now();
        let body = BodyReader {
            rx: &mut msg.body,
            current: Bytes::new(),
            job: &job,
        };
        let raw_tmp = settings
            .raw_dir
            .as_ref()
            .map(|d| d.join(format!("tmp-{}-{}", std::process::id(), job.id)));
        let raw = match &raw_tmp {
            Some(path) => Some(io::BufWriter::new(std::fs::File::create(path).map_err(
                |e| ParseError::Io {
                    offset: 0,
                    source: e,
                },
            )?)),
            None => None,
        };
        let decoded: Box<dyn Read + '_> = if msg.gzip {
            Box::new(health::gunzip(body))
        } else {
            Box::new(body)
        };
        let mut input = Digesting {
            inner: decoded,
            sha: Sha256::new(),
            count: 0,
            limit: settings.max_decoded_bytes,
            exceeded: false,
            raw,
        };
        let result = self.parse_and_store(&job, &settings, &mut input);
        let Digesting { raw, .. } = input;
        drop(raw);
        match (&result, &raw_tmp, &settings.raw_dir) {
            (Ok(Inserted::Created(rec)), Some(tmp), Some(dir)) => {
                if let Err(e) = std::fs::rename(tmp, dir.join(&rec.id)) {
                    tracing::warn!(error = %e, "could not keep the raw upload");
                }
            }
            (_, Some(tmp), _) => {
                let _ = std::fs::remove_file(tmp);
            }
            _ => {}
        }
        if let Ok(r) = &result {
            let rec = r.record();
            tracing::info!(job = job.id, file = %rec.id, format = %rec.format, bytes = rec.bytes,
                records = rec.records, duplicate = matches!(r, Inserted::Existing(_)),
                ms = started.elapsed().as_millis() as u64, "health file parsed");
        }
        result
    }

    fn parse_and_store(
        &mut self,
        job: &JobState,
        settings: &PoolSettings,
        input: &mut Digesting<Box<dyn Read + '_>>,
    ) -> Result<Inserted, UploadError> {
        if settings.test_hooks && job.name == PANIC_HOOK_NAME {
            let mut first = [0u8; 16];
            let _ = input.read(&mut first);
            panic!("test hook: a parser panic was requested");
        }
        let parsed = health::parse_auto(&mut *input, Some(&job.name), &settings.limits, &mut |n| {
            job.parsed.store(n, Ordering::Relaxed)
        });
        let too_large = |input: &Digesting<_>| UploadError::TooLarge { limit: input.limit };
        let parsed = match parsed {
            Ok(p) => p,
            Err(_) if input.exceeded => return Err(too_large(input)),
            Err(e) => return Err(e.into()),
        };
        // The parser may stop before the end (a zip's central directory): hash everything.
        if let Err(source) = io::copy(&mut *input, &mut io::sink()) {
            if input.exceeded {
                return Err(too_large(input));
            }
            return Err(ParseError::Io {
                offset: input.count,
                source,
            }
            .into());
        }
        job.parsed.store(input.count, Ordering::Relaxed);
        let sha256 = hex::encode(input.sha.clone().finalize());
        let new = NewFile {
            owner: &job.owner,
            name: &job.name,
            bytes: input.count,
            sha256: &sha256,
            summary: &parsed.summary,
            aggregates: &parsed.aggregates,
        };
        Ok(self.store()?.insert_file(new)?)
    }
}

/// The HTTP body as a blocking `Read`: chunks arrive through a bounded channel.
struct BodyReader<'a> {
    rx: &'a mut mpsc::Receiver<Chunk>,
    current: Bytes,
    job: &'a JobState,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.job
                        .received
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    self.current = b;
                }
                Some(Err(why)) => return Err(io::Error::other(why)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Hashes, counts and bounds the decoded bytes, and copies them to the raw file if kept.
struct Digesting<R> {
    inner: R,
    sha: Sha256,
    count: u64,
    limit: u64,
    exceeded: bool,
    raw: Option<io::BufWriter<std::fs::File>>,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if self.count > self.limit {
            self.exceeded = true;
            return Err(io::Error::other(format!(
                "the decompressed upload exceeds {} bytes",
                self.limit
            )));
        }
        self.sha.update(&buf[..n]);
        if let Some(raw) = &mut self.raw {
            raw.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

// === impl ParserPool ===

/// The pool's front: admission (bounded), job table, and the workers' address.
pub struct ParserPool {
    addr: Addr<HealthParser>,
    slots: Arc<Semaphore>,
    jobs: Jobs,
    next_id: AtomicU64,
    settings: Arc<PoolSettings>,
}

impl std::fmt::Debug for ParserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParserPool")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// An admitted upload: feed it the body, then wait for the stored record.
pub struct Upload {
    /// The job, for progress.
    pub job: Arc<JobState>,
    tx: Option<mpsc::Sender<Chunk>>,
    result: actix::dev::Request<HealthParser, ParseJob>,
}

impl Upload {
    /// Hands one chunk to the parser, waiting while it is behind. `false` when the parser
    /// stopped reading (it finished or refused the file): stop sending and call `finish`.
    pub async fn feed(&mut self, chunk: Bytes) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Ok(chunk)).await.is_ok(),
            None => false,
        }
    }

    /// Breaks the body off: the parse fails and nothing is stored.
    pub async fn abort(&mut self, why: &str) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(why.to_owned())).await;
        }
    }

    /// Ends the body and waits for the result.
    pub async fn finish(mut self) -> Result<Inserted, UploadError> {
        drop(self.tx.take());
        self.result.await.map_err(|_| UploadError::Unavailable)?
    }
}

impl ParserPool {
    /// Starts the parser threads in the current actix system.
    pub fn start(settings: PoolSettings, factory: StoreFactory) -> Arc<ParserPool> {
        let settings = Arc::new(settings);
        let s = settings.clone();
        let addr = SyncArbiter::start(settings.workers.max(1), move || HealthParser {
            settings: s.clone(),
            factory: factory.clone(),
            store: None,
        });
        Arc::new(ParserPool {
            addr,
            slots: Arc::new(Semaphore::new(settings.queue.max(1))),
            jobs: Arc::new(DashMap::new()),
            next_id: AtomicU64::new(1),
            settings,
        })
    }

    /// Admits an upload, or refuses at once with [`UploadError::Busy`] when the pool is full.
    pub fn begin(&self, owner: &str, name: &str, gzip: bool) -> Result<Upload, UploadError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| UploadError::Busy {
                in_flight: self.in_flight(),
                retry_after_secs: self.settings.retry_after_secs,
            })?;
        let job = Arc::new(JobState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            owner: owner.to_owned(),
            name: name.to_owned(),
            started: SystemTime::now(),
            received: AtomicU64::new(0),
            parsed: AtomicU64::new(0),
            running: AtomicBool::new(false),
        });
        self.jobs.insert(job.id, job.clone());
        let (tx, rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
        // Below the mailbox capacity (the semaphore bounds it), so `send` enqueues right away.
        let result = self.addr.send(ParseJob {
            job: job.clone(),
            gzip,
            body: rx,
            jobs: self.jobs.clone(),
            _permit: permit,
        });
        Ok(Upload {
            job,
            tx: Some(tx),
            result,
        })
    }

    /// Jobs in flight, oldest first.
    pub fn jobs(&self) -> Vec<JobSnapshot> {
        let mut jobs: Vec<JobSnapshot> = self.jobs.iter().map(|j| j.snapshot()).collect();
        jobs.sort_by_key(|j| j.id);
        jobs
    }

    /// Uploads in flight.
    pub fn in_flight(&self) -> usize {
        self.settings.queue.max(1) - self.slots.available_permits()
    }

    /// The settings the pool runs with.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }
}
