//! Files and content fragments (dust-api.md §8): upload in two steps (create the upload URL,
//! then a multipart POST of part `file`), and fragments inline (≤ 512 KiB) or by file id.
use awc::http::Method;
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::{json, Value};

use super::client::{check_id, decode, Body, DustClient};
use super::error::DustError;
use super::types::{ContentFragment, ContentFragmentResponse, DustFile, FileResponse};

/// Dust's cap on inline fragment content, in JS string units (dust-api.md §8.1).
pub const MAX_INLINE_FRAGMENT_CHARS: usize = 512 * 1024;

/// A content fragment to attach to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentInput {
    /// Inline text, converted to a file by Dust.
    Inline {
        /// Title shown in Dust.
        title: String,
        /// The text (non-empty, ≤ 512 KiB).
        content: String,
        /// MIME type, e.g. `text/plain`.
        content_type: String,
    },
    /// A file uploaded before with `upload_file`.
    File {
        /// Title shown in Dust.
        title: String,
        /// The file sId.
        file_id: String,
    },
}

impl FragmentInput {
    /// The JSON body Dust expects, after checking Dust's limits.
    pub(crate) fn to_body(&self) -> Result<Value, DustError> {
        match self {
            Self::Inline {
                title,
                content,
                content_type,
            } => {
                // Dust counts JS string length (UTF-16 units).
                let size = content.encode_utf16().count();
                if size == 0 {
                    return Err(DustError::InvalidInput {
                        detail: format!("content fragment {title:?} is empty"),
                    });
                }
                if size > MAX_INLINE_FRAGMENT_CHARS {
                    return Err(DustError::ContentTooLarge {
                        size,
                        limit: MAX_INLINE_FRAGMENT_CHARS,
                    });
                }
                Ok(
                    json!({"title": title, "content": content, "contentType": content_type, "url": null}),
                )
            }
            Self::File { title, file_id } => {
                check_id("file", file_id)?;
                Ok(json!({"title": title, "fileId": file_id, "url": null}))
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UploadUrlBody<'a> {
    content_type: &'a str,
    file_name: &'a str,
    file_size: usize,
    use_case: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    use_case_metadata: Option<Value>,
}

impl DustClient {
    /// Uploads a file for use in a conversation and returns it processed (`status: ready`).
    pub async fn upload_file(
        &self,
        file_name: &str,
        content_type: &str,
        bytes: Bytes,
        conversation_id: Option<&str>,
    ) -> Result<DustFile, DustError> {
        if let Some(cid) = conversation_id {
            check_id("conversation", cid)?;
        }
        let body = UploadUrlBody {
            content_type,
            file_name,
            file_size: bytes.len(),
            use_case: "conversation",
            use_case_metadata: conversation_id.map(|c| json!({"conversationId": c})),
        };
        let created: FileResponse = self
            .post_json_once(&self.url("files"), &body, "create file upload URL")
            .await?;
        let upload_url = created
            .file
            .upload_url
            .clone()
            .ok_or_else(|| DustError::Decode {
                what: "file upload URL response".into(),
                detail: "no uploadUrl".into(),
            })?;
        // The key goes only to our own Dust host, whatever URL the response names.
        if !upload_url.starts_with(&format!("{}/", self.base_url())) {
            return Err(DustError::Decode {
                what: "file upload URL response".into(),
                detail: "uploadUrl points outside the configured Dust host".into(),
            });
        }
        let boundary = format!("dust-mcp-{}", uuid::Uuid::new_v4().simple());
        let multipart = multipart_body(&boundary, file_name, content_type, &bytes);
        let body = Body::Raw {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes: multipart,
        };
        let uploaded = self
            .execute(Method::POST, &upload_url, &body, "upload file")
            .await?;
        let resp: FileResponse = decode(&uploaded, "upload file")?;
        Ok(resp.file)
    }

    /// Attaches a fragment to an existing conversation.
    pub async fn add_content_fragment(
        &self,
        conversation_id: &str,
        fragment: &FragmentInput,
    ) -> Result<ContentFragment, DustError> {
        check_id("conversation", conversation_id)?;
        let body = fragment.to_body()?;
        let url = self.url(&format!(
            "assistant/conversations/{conversation_id}/content_fragments"
        ));
        let resp: ContentFragmentResponse = self
            .post_json_once(&url, &body, "add content fragment")
            .await?;
        Ok(resp.content_fragment)
    }
}

/// A `multipart/form-data` body with the single part `file`.
fn multipart_body(boundary: &str, file_name: &str, content_type: &str, bytes: &[u8]) -> Bytes {
    // Quotes and line breaks would end the header value early.
    let name: String = file_name
        .chars()
        .map(|c| {
            if matches!(c, '"' | '\r' | '\n' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let ct: String = content_type.chars().filter(|c| !c.is_control()).collect();
    let mut out = BytesMut::with_capacity(bytes.len() + 256);
    out.put_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
    out.put_slice(bytes);
    out.put_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_fragment_limit_is_enforced_with_a_clear_error() {
        let ok = FragmentInput::Inline {
            title: "t".into(),
            content: "x".repeat(MAX_INLINE_FRAGMENT_CHARS),
            content_type: "text/plain".into(),
        };
        assert_eq!(ok.to_body().unwrap()["contentType"], "text/plain");
        let big = FragmentInput::Inline {
            title: "t".into(),
            content: "x".repeat(MAX_INLINE_FRAGMENT_CHARS + 1),
            content_type: "text/plain".into(),
        };
        let err = big.to_body().unwrap_err();
        assert!(matches!(err, DustError::ContentTooLarge { .. }));
        assert!(err.to_string().contains("upload it as a file"), "{err}");
        let file = FragmentInput::File {
            title: "r.pdf".into(),
            file_id: "fil_1".into(),
        };
        assert_eq!(file.to_body().unwrap()["fileId"], "fil_1");
    }

    #[test]
    fn multipart_has_one_file_part() {
        let body = multipart_body("B", "a\"b.csv", "text/csv", b"x,y\n1,2\n");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.starts_with(
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a_b.csv\"\r\n"
        ));
        assert!(text.contains("\r\n\r\nx,y\n1,2\n\r\n--B--\r\n"));
    }
}
