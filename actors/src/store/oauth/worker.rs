//! `OAuthHandle`: a `SyncArbiter` of threads that each own an [`OAuthStore`] connection, so the
//! HTTP edge reaches the blocking OAuth tables through a mailbox, never on an async worker.

use std::panic::{catch_unwind, AssertUnwindSafe};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};

use super::{OAuthFactory, OAuthStore};
use crate::store::{worker_panic_message as panic_message, StoreError};

type OAuthFn<R> = Box<dyn FnOnce(&mut OAuthStore) -> Result<R, StoreError> + Send>;

/// One blocking OAuth store call.
pub struct OAuthCall<R>(OAuthFn<R>);

impl<R: Send + 'static> Message for OAuthCall<R> {
    type Result = Result<R, StoreError>;
}

/// An OAuth store thread; a connection that fails to open is retried on the next call.
pub struct OAuthWorker {
    factory: OAuthFactory,
    store: Option<OAuthStore>,
}

impl Actor for OAuthWorker {
    type Context = SyncContext<Self>;
}

impl<R: Send + 'static> Handler<OAuthCall<R>> for OAuthWorker {
    type Result = Result<R, StoreError>;

    /// Runs the call; a panic fails that call only (it would kill the thread for good).
    fn handle(&mut self, call: OAuthCall<R>, _: &mut SyncContext<Self>) -> Self::Result {
        if self.store.is_none() {
            self.store = Some((self.factory)()?);
        }
        let Some(store) = self.store.as_mut() else {
            return Err(StoreError::Unavailable);
        };
        match catch_unwind(AssertUnwindSafe(|| (call.0)(store))) {
            Ok(r) => r,
            Err(panic) => {
                self.store = None;
                Err(StoreError::Panicked(panic_message(&*panic)))
            }
        }
    }
}

/// Async access to the OAuth store threads.
#[derive(Clone)]
pub struct OAuthHandle {
    addr: Addr<OAuthWorker>,
}

impl std::fmt::Debug for OAuthHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthHandle").finish_non_exhaustive()
    }
}

impl OAuthHandle {
    /// Starts `threads` store threads (at least one) in the current actix system.
    pub fn start(threads: usize, factory: OAuthFactory) -> OAuthHandle {
        let addr = SyncArbiter::start(threads.max(1), move || OAuthWorker {
            factory: factory.clone(),
            store: None,
        });
        OAuthHandle { addr }
    }

    /// Runs `f` on a store thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut OAuthStore) -> Result<R, StoreError> + Send + 'static,
    {
        self.addr
            .send(OAuthCall(Box::new(f)))
            .await
            .map_err(|_| StoreError::Unavailable)?
    }
}
