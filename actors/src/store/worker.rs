//! `StoreWorker`: a `SyncArbiter` of threads that each own a store connection, so async code
//! (tools, HTTP handlers) reaches the blocking store through a mailbox, never on its own thread.

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};

use super::{HealthStore, StoreError, StoreFactory};

/// A function run against a worker's store.
type StoreFn<R> = Box<dyn FnOnce(&mut dyn HealthStore) -> Result<R, StoreError> + Send>;

/// One blocking store call.
pub struct StoreCall<R>(StoreFn<R>);

impl<R: Send + 'static> Message for StoreCall<R> {
    type Result = Result<R, StoreError>;
}

/// A store thread. A connection that fails to open is retried on the next call.
pub struct StoreWorker {
    factory: StoreFactory,
    store: Option<Box<dyn HealthStore>>,
}

impl Actor for StoreWorker {
    type Context = SyncContext<Self>;
}

impl<R: Send + 'static> Handler<StoreCall<R>> for StoreWorker {
    type Result = Result<R, StoreError>;

    /// Runs the call; a panic fails that call only (a panic would kill the thread for good).
    fn handle(&mut self, call: StoreCall<R>, _: &mut SyncContext<Self>) -> Self::Result {
        if self.store.is_none() {
            self.store = Some((self.factory)()?);
        }
        let Some(store) = self.store.as_deref_mut() else {
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

/// Async access to the store threads.
#[derive(Clone)]
pub struct StoreHandle {
    addr: Addr<StoreWorker>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

impl StoreHandle {
    /// Starts `threads` store threads (at least one) in the current actix system.
    pub fn start(threads: usize, factory: StoreFactory) -> StoreHandle {
        let addr = SyncArbiter::start(threads.max(1), move || StoreWorker {
            factory: factory.clone(),
            store: None,
        });
        StoreHandle { addr }
    }

    /// Runs `f` on a store thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn HealthStore) -> Result<R, StoreError> + Send + 'static,
    {
        self.addr
            .send(StoreCall(Box::new(f)))
            .await
            .map_err(|_| StoreError::Unavailable)?
    }
}
