//! An append-only event log per agent message (and per conversation), standing in for Dust's
//! Redis streams (dust-api.md §7.3): Redis-like ids `<ms>-<seq>`, frames serialised once and
//! shared by every reader, a `watch` to wake readers, and retention after the last write.
//! Readers never hold the lock across an await.

use std::{cmp::Ordering, fmt, str::FromStr, time::Duration};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::{sync::watch, time::Instant};

use super::model::now_ms;

/// A Redis stream id: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId {
    /// Wall-clock milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EventId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Ok(EventId {
            ms: ms.parse().map_err(|_| ())?,
            seq: seq.parse().map_err(|_| ())?,
        })
    }
}

/// One stored entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: EventId,
    /// `data: {"eventId":..,"data":..}\n\n`, or empty for the internal end-of-stream marker.
    pub(crate) frame: Bytes,
    /// The internal `end-of-stream` entry: readers stop on it without forwarding it.
    pub(crate) end_of_stream: bool,
}

#[derive(Debug)]
struct Inner {
    entries: Vec<Entry>,
    last: EventId,
    last_write: Instant,
    /// Entries before this index were dropped by retention.
    expired_until: usize,
}

/// The log of one message or conversation.
#[derive(Debug)]
pub(crate) struct EventLog {
    inner: Mutex<Inner>,
    /// Number of entries appended so far; readers wait on changes.
    len_tx: watch::Sender<usize>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                last: EventId { ms: 0, seq: 0 },
                last_write: Instant::now(),
                expired_until: 0,
            }),
            len_tx: watch::channel(0).0,
        }
    }
}

impl EventLog {
    fn next_id(inner: &mut Inner) -> EventId {
        let ms = now_ms();
        let id = if ms > inner.last.ms {
            EventId { ms, seq: 0 }
        } else {
            EventId {
                ms: inner.last.ms,
                seq: inner.last.seq + 1,
            }
        };
        inner.last = id;
        id
    }

    /// Appends an event; `data` gets its `eventId` envelope. Returns the id.
    pub(crate) fn push(&self, data: Value) -> EventId {
        let (id, len) = {
            let mut inner = self.inner.lock();
            let id = Self::next_id(&mut inner);
            let envelope = json!({"eventId": id.to_string(), "data": data});
            let frame = Bytes::from(format!("data: {envelope}\n\n"));
            inner.entries.push(Entry {
                id,
                frame,
                end_of_stream: false,
            });
            inner.last_write = Instant::now();
            (id, inner.entries.len())
        };
        self.len_tx.send_replace(len);
        id
    }

    /// Appends the internal end-of-stream marker.
    pub(crate) fn push_end_of_stream(&self) {
        let len = {
            let mut inner = self.inner.lock();
            let id = Self::next_id(&mut inner);
            inner.entries.push(Entry {
                id,
                frame: Bytes::new(),
                end_of_stream: true,
            });
            inner.last_write = Instant::now();
            inner.entries.len()
        };
        self.len_tx.send_replace(len);
    }

    /// A receiver that changes whenever an entry is appended.
    pub(crate) fn subscribe(&self) -> watch::Receiver<usize> {
        self.len_tx.subscribe()
    }

    /// Index of the first entry a new reader gets: after `after` if given, else from the start;
    /// nothing of the history if it expired (`ttl` after the last write).
    pub(crate) fn start_index(&self, after: Option<EventId>, ttl: Duration) -> usize {
        let inner = self.inner.lock();
        if inner.last_write.elapsed() > ttl {
            return inner.entries.len();
        }
        let from = inner.expired_until;
        match after {
            None => from,
            Some(after) => {
                from + inner.entries[from..]
                    .partition_point(|e| e.id.cmp(&after) != Ordering::Greater)
            }
        }
    }

    /// Entries from index `from` on (cheap clones of shared frames).
    pub(crate) fn read_from(&self, from: usize) -> Vec<Entry> {
        let inner = self.inner.lock();
        let from = from.max(inner.expired_until);
        inner
            .entries
            .get(from..)
            .map(<[Entry]>::to_vec)
            .unwrap_or_default()
    }

    /// Frees the frames once retention is over, keeping indices stable.
    pub(crate) fn expire(&self) {
        let mut inner = self.inner.lock();
        let n = inner.entries.len();
        for e in &mut inner.entries {
            e.frame = Bytes::new();
        }
        inner.expired_until = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_replay_is_strictly_after() {
        let log = EventLog::default();
        let ids: Vec<EventId> = (0..5).map(|i| log.push(json!({ "i": i }))).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let ttl = Duration::from_secs(60);
        assert_eq!(log.start_index(None, ttl), 0);
        assert_eq!(log.start_index(Some(ids[2]), ttl), 3);
        assert_eq!(log.start_index(Some(ids[4]), ttl), 5);
        let parsed: EventId = ids[1].to_string().parse().unwrap();
        assert_eq!(parsed, ids[1]);
    }
}
