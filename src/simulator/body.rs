//! Reading request bodies with our own limit, so an oversized body gets Dust's 413
//! `content_too_large` JSON envelope instead of actix-web's plain default.

use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::error::ApiError;

/// Largest JSON body accepted (an inline fragment of 512 Ki characters can be ~2 MiB of UTF-8).
pub(crate) const MAX_JSON_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes.
pub(crate) async fn read(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid(format!("Could not read the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                413,
                "content_too_large",
                "Request body too large.",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
