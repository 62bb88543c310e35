//! JSON-RPC 2.0 envelopes as they cross the wire: decoding what a client POSTs, encoding what we
//! send back. Method semantics live in `dispatch`; this file only knows ids, methods and shapes.

use rmcp::model::{ErrorCode, ErrorData, RequestId};
use serde_json::{json, Map, Value};

/// One decoded client message.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A request: expects exactly one response with the same id.
    Request(Request),
    /// A notification: no id, no response.
    Notification { method: String, params: Value },
    /// The client's answer to a server-to-client request (sampling, elicitation).
    Response {
        id: RequestId,
        outcome: Result<Value, ErrorData>,
    },
}

/// A client request.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    /// `params` as sent; `Value::Null` when absent.
    pub params: Value,
}

/// Why a body could not be turned into messages. Each maps to one JSON-RPC error.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("the body is not valid JSON: {0}")]
    Parse(String),
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(String),
    #[error("an empty JSON-RPC batch")]
    EmptyBatch,
}

impl DecodeError {
    /// The JSON-RPC error sent for this decode failure (id is unknown, so `null`).
    pub fn to_error_data(&self) -> ErrorData {
        match self {
            DecodeError::Parse(_) => ErrorData::parse_error(self.to_string(), None),
            DecodeError::Invalid(_) | DecodeError::EmptyBatch => {
                ErrorData::invalid_request(self.to_string(), None)
            }
        }
    }
}

/// A decoded body: one message, or a batch (JSON-RPC arrays, MCP 2025-03-26 only).
#[derive(Debug)]
pub enum Body {
    Single(Incoming),
    Batch(Vec<Incoming>),
}

impl Body {
    /// Decodes a POST body.
    pub fn decode(bytes: &[u8]) -> Result<Body, DecodeError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Parse(e.to_string()))?;
        match value {
            Value::Array(items) if items.is_empty() => Err(DecodeError::EmptyBatch),
            Value::Array(items) => items
                .into_iter()
                .map(decode_message)
                .collect::<Result<_, _>>()
                .map(Body::Batch),
            other => decode_message(other).map(Body::Single),
        }
    }

    /// The messages, in order.
    pub fn into_messages(self) -> Vec<Incoming> {
        match self {
            Body::Single(m) => vec![m],
            Body::Batch(ms) => ms,
        }
    }
}

fn decode_message(value: Value) -> Result<Incoming, DecodeError> {
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::Invalid("expected a JSON object".into()));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(DecodeError::Invalid(r#"missing "jsonrpc": "2.0""#.into()));
    }
    let id = match obj.remove("id") {
        None => None,
        Some(v) => Some(decode_id(v)?),
    };
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(DecodeError::Invalid(r#""method" must be a string"#.into()));
        };
        let params = obj.remove("params").unwrap_or(Value::Null);
        if !matches!(params, Value::Null | Value::Object(_) | Value::Array(_)) {
            return Err(DecodeError::Invalid(
                r#""params" must be an object or an array"#.into(),
            ));
        }
        return Ok(match id {
            Some(id) => Incoming::Request(Request { id, method, params }),
            None => Incoming::Notification { method, params },
        });
    }
    let Some(id) = id else {
        return Err(DecodeError::Invalid(
            r#"a message needs "method" (request or notification) or "id" (response)"#.into(),
        ));
    };
    let outcome = match (obj.remove("result"), obj.remove("error")) {
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(serde_json::from_value::<ErrorData>(error)
            .map_err(|e| DecodeError::Invalid(format!("malformed \"error\": {e}")))?),
        _ => {
            return Err(DecodeError::Invalid(
                r#"a response carries exactly one of "result" and "error""#.into(),
            ))
        }
    };
    Ok(Incoming::Response { id, outcome })
}

fn decode_id(value: Value) -> Result<RequestId, DecodeError> {
    // JSON-RPC ids are strings or integers; MCP forbids null (basic/index.mdx).
    match value {
        Value::String(_) | Value::Number(_) => serde_json::from_value(value)
            .map_err(|_| DecodeError::Invalid(r#""id" must be a string or an integer"#.into())),
        _ => Err(DecodeError::Invalid(
            r#""id" must be a string or an integer"#.into(),
        )),
    }
}

/// A response carrying `result`.
pub fn response(id: &RequestId, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A response carrying `error`; `id` is `None` when the request's id could not be read.
pub fn error_response(id: Option<&RequestId>, error: &ErrorData) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// A notification.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// A server-to-client request.
pub fn request(id: &RequestId, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Removes fields that only the 2026-07-28 revision defines (`resultType`, `ttlMs`,
/// `cacheScope`) from a result built with rmcp's constructors, so older peers get exact
/// wire shapes (rust-stack.md §3, gotcha 3).
pub fn strip_modern_fields(result: &mut Value) {
    if let Value::Object(map) = result {
        for key in ["resultType", "ttlMs", "cacheScope"] {
            map.remove(key);
        }
    }
}

/// Serialises an rmcp result type into a legacy-shaped JSON value.
pub fn to_wire<T: serde::Serialize>(value: &T) -> Result<Value, ErrorData> {
    let mut v = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("could not encode result: {e}"), None))?;
    strip_modern_fields(&mut v);
    Ok(v)
}

/// Parses typed params; a failure is the caller's fault, so it becomes -32602 (invalid params),
/// never -32601 (rust-stack.md §3, gotcha 2).
pub fn parse_params<T: serde::de::DeserializeOwned>(
    method: &str,
    params: &Value,
) -> Result<T, ErrorData> {
    let params = match params {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(params).map_err(|e| {
        ErrorData::new(
            ErrorCode::INVALID_PARAMS,
            format!("invalid params for {method}: {e}"),
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_request_notification_and_response() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":"s-1","result":{"ok":true}}]"#;
        let msgs = Body::decode(body).unwrap().into_messages();
        assert!(
            matches!(&msgs[0], Incoming::Request(r) if r.method == "ping" && r.params.is_null())
        );
        assert!(
            matches!(&msgs[1], Incoming::Notification { method, .. } if method == "notifications/initialized")
        );
        assert!(matches!(
            &msgs[2],
            Incoming::Response { outcome: Ok(_), .. }
        ));
    }

    #[test]
    fn bad_json_is_a_parse_error() {
        let err = Body::decode(b"{not json").unwrap_err();
        assert_eq!(err.to_error_data().code, ErrorCode::PARSE_ERROR);
    }

    #[test]
    fn null_id_and_missing_version_are_invalid_requests() {
        for body in [
            &br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#[..],
            br#"{"id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"[]"#,
        ] {
            let err = Body::decode(body).unwrap_err();
            assert_eq!(
                err.to_error_data().code,
                ErrorCode::INVALID_REQUEST,
                "{err}"
            );
        }
    }

    #[test]
    fn strips_modern_fields_only() {
        let mut v = json!({"resultType":"complete","ttlMs":0,"cacheScope":"private","tools":[]});
        strip_modern_fields(&mut v);
        assert_eq!(v, json!({"tools": []}));
    }
}
