//! `Workers<S>`: a `SyncArbiter` of threads that each own one blocking store connection of type
//! `S` (the health store, the OAuth store), so async code (tools, HTTP handlers) reaches it
//! through a mailbox and never blocks its own thread. A panic inside a call fails that call
//! only: the thread drops its connection, opens a fresh one on the next call, and lives on.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Arc,
};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};

use super::{HealthStore, StoreError, StoreFactory};

/// Opens a connection of type `S`.
pub type Opener<S> = Arc<dyn Fn() -> Result<S, StoreError> + Send + Sync>;

/// A function run against a worker's connection.
type CallFn<S, R> = Box<dyn FnOnce(&mut S) -> Result<R, StoreError> + Send>;

/// One blocking call against a worker's connection.
pub struct StoreCall<S: 'static, R>(CallFn<S, R>);

impl<S: 'static, R: Send + 'static> Message for StoreCall<S, R> {
    type Result = Result<R, StoreError>;
}

/// A store thread. A connection that fails to open is retried on the next call.
pub struct StoreWorker<S: 'static> {
    open: Opener<S>,
    store: Option<S>,
}

impl<S: Unpin + 'static> Actor for StoreWorker<S> {
    type Context = SyncContext<Self>;
}

impl<S: Unpin + 'static, R: Send + 'static> Handler<StoreCall<S, R>> for StoreWorker<S> {
    type Result = Result<R, StoreError>;

    /// Runs the call; a panic fails that call only (a panic would kill the thread for good).
    fn handle(&mut self, call: StoreCall<S, R>, _: &mut SyncContext<Self>) -> Self::Result {
        if self.store.is_none() {
            self.store = Some((self.open)()?);
        }
        let Some(store) = self.store.as_mut() else {
            return Err(StoreError::Unavailable);
        };
        match catch_unwind(AssertUnwindSafe(|| (call.0)(store))) {
            Ok(r) => r,
            Err(panic) => {
                // The connection may be mid-statement; open a fresh one next time.
                self.store = None;
                Err(StoreError::Panicked(panic_message(&*panic)))
            }
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Async access to the threads of one kind of store.
pub struct Workers<S: Unpin + 'static> {
    addr: Addr<StoreWorker<S>>,
}

impl<S: Unpin + 'static> Clone for Workers<S> {
    fn clone(&self) -> Self {
        Workers {
            addr: self.addr.clone(),
        }
    }
}

impl<S: Unpin + 'static> std::fmt::Debug for Workers<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl<S: Unpin + 'static> Workers<S> {
    /// Starts `threads` store threads (at least one) in the current actix system.
    pub fn start(threads: usize, open: Opener<S>) -> Workers<S> {
        let addr = SyncArbiter::start(threads.max(1), move || StoreWorker {
            open: open.clone(),
            store: None,
        });
        Workers { addr }
    }

    /// Runs `f` on a store thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> Result<R, StoreError> + Send + 'static,
    {
        self.addr
            .send(StoreCall(Box::new(f)))
            .await
            .map_err(|_| StoreError::Unavailable)?
    }
}

/// Async access to the health store threads.
#[derive(Clone, Debug)]
pub struct StoreHandle(Workers<Box<dyn HealthStore>>);

impl StoreHandle {
    /// Starts `threads` health store threads (at least one) in the current actix system.
    pub fn start(threads: usize, factory: StoreFactory) -> StoreHandle {
        StoreHandle(Workers::start(threads, factory))
    }

    /// Runs `f` on a store thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn HealthStore) -> Result<R, StoreError> + Send + 'static,
    {
        self.0.run(move |s| f(s.as_mut())).await
    }
}
