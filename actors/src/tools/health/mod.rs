//! `health_*` tools, the `health://files/{id}/summary` resources, the `health_review` prompt,
//! and the fragment source that attaches summaries to `dust_ask`. `HealthService` is what they
//! share with the HTTP upload routes: the parser pool, the store, upload links, a file index.
//!
//! `calls.rs` holds the tool bodies, `render.rs` what they show, `link.rs` the upload links.

mod calls;
mod link;
mod render;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use dashmap::DashMap;
use futures::future::LocalBoxFuture;
use rmcp::model::{
    ErrorData, GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult,
    Resource, ResourceContents, ResourceTemplate, Role,
};

pub use link::{LinkError, UploadLinks};
pub use render::markdown as summary_markdown;

use crate::{
    dust::{FragmentInput, MAX_INLINE_FRAGMENT_CHARS},
    health_parser::{ParserPool, Upload, UploadError},
    mcp::{
        catalogue::{Catalogue, PromptHandler, ResourceHandler},
        context::RequestContext,
    },
    principal::Principal,
    store::{HealthStore, Inserted, StoreError, StoreFactory, StoreHandle},
};

/// Settings of the health tools.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// Largest file `health_upload` accepts inline, in bytes (decoded).
    pub max_tool_upload_bytes: usize,
    /// Most points `health_query` returns.
    pub max_query_points: usize,
    /// Where kept raw uploads are (`keep_raw_uploads`), to delete them with their file.
    pub raw_dir: Option<PathBuf>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            max_tool_upload_bytes: 8 * 1024 * 1024,
            max_query_points: 1000,
            raw_dir: None,
        }
    }
}

/// What the health tools and the upload routes share.
pub struct HealthService {
    /// The parser pool.
    pub pool: Arc<ParserPool>,
    /// Async access to the store.
    pub store: StoreHandle,
    /// Upload link signer.
    pub links: UploadLinks,
    /// Tool settings.
    pub settings: HealthSettings,
    public_base: OnceLock<String>,
    /// owner -> (file id -> name), for the synchronous resource listing.
    index: DashMap<String, BTreeMap<String, String>>,
    /// The fragment source's own connection (see `fragments`).
    fragment_store: Mutex<Option<Box<dyn HealthStore>>>,
    factory: StoreFactory,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

impl HealthService {
    /// Builds the service; loads the file index with one blocking read (start-up only).
    pub fn new(
        pool: Arc<ParserPool>,
        store: StoreHandle,
        links: UploadLinks,
        settings: HealthSettings,
        factory: StoreFactory,
    ) -> Result<Arc<HealthService>, StoreError> {
        let index: DashMap<String, BTreeMap<String, String>> = DashMap::new();
        for (owner, id, name) in factory()?.index()? {
            index.entry(owner).or_default().insert(id, name);
        }
        Ok(Arc::new(HealthService {
            pool,
            store,
            links,
            settings,
            public_base: OnceLock::new(),
            index,
            fragment_store: Mutex::new(None),
            factory,
        }))
    }

    /// Sets the base URL upload links point to (the public URL, or the bound address).
    pub fn set_public_base(&self, base: &str) {
        let _ = self.public_base.set(base.trim_end_matches('/').to_owned());
    }

    /// The base URL of upload links.
    pub fn public_base(&self) -> &str {
        self.public_base
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:8080")
    }

    /// Admits an upload into the pool (refused at once when full).
    pub fn begin(&self, owner: &str, name: &str, gzip: bool) -> Result<Upload, UploadError> {
        self.pool.begin(owner, name, gzip)
    }

    /// Ends an upload's body, waits for the stored record and indexes it.
    pub async fn complete(&self, upload: Upload) -> Result<Inserted, UploadError> {
        let owner = upload.job.owner.clone();
        let inserted = upload.finish().await?;
        if let Inserted::Created(rec) = &inserted {
            self.index
                .entry(owner)
                .or_default()
                .insert(rec.id.clone(), rec.name.clone());
        }
        Ok(inserted)
    }

    /// Deletes one of `owner`'s files (and its kept raw bytes); `false` when unknown.
    pub async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let (o, i) = (owner.to_owned(), id.to_owned());
        let deleted = self.store.run(move |s| s.delete_file(&o, &i)).await?;
        if deleted {
            if let Some(mut files) = self.index.get_mut(owner) {
                files.remove(id);
            }
            if let Some(dir) = &self.settings.raw_dir {
                if is_file_id(id) {
                    let _ = std::fs::remove_file(dir.join(id));
                }
            }
        }
        Ok(deleted)
    }

    /// The owner's indexed files (id, name).
    pub fn indexed(&self, owner: &str) -> Vec<(String, String)> {
        self.index
            .get(owner)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// `dust_ask`'s `health_file_ids`: the files' Markdown summaries as inline fragments.
    ///
    /// `FragmentSource` is synchronous, so this is the one store read on the caller's thread:
    /// a primary-key read on its own WAL connection (readers never wait for writers), after an
    /// index check so unknown ids cost nothing. TODO(health-service): make the source async.
    pub fn fragments(
        &self,
        principal: &Principal,
        ids: &[String],
    ) -> Result<Vec<FragmentInput>, String> {
        let known = self.index.get(&*principal.name);
        for id in ids {
            if !known.as_ref().is_some_and(|m| m.contains_key(id)) {
                return Err(format!(
                    "no health file {id:?}: use health_list_files to see your files' ids"
                ));
            }
        }
        drop(known);
        let mut guard = self
            .fragment_store
            .lock()
            .map_err(|_| "the health store is unavailable".to_owned())?;
        if guard.is_none() {
            *guard = Some((self.factory)().map_err(|e| e.to_string())?);
        }
        let store = guard
            .as_deref_mut()
            .ok_or("the health store is unavailable")?;
        let mut out = Vec::new();
        for id in ids {
            let rec = store
                .get_file(&principal.name, id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no health file {id:?}: use health_list_files"))?;
            let mut content = render::markdown(&rec);
            if content.len() > MAX_INLINE_FRAGMENT_CHARS {
                let mut cut = MAX_INLINE_FRAGMENT_CHARS - 100;
                while !content.is_char_boundary(cut) {
                    cut -= 1;
                }
                content.truncate(cut);
                content.push_str("\n\n[summary truncated to Dust's inline limit]\n");
            }
            out.push(FragmentInput::Inline {
                title: format!("Health summary: {}", rec.name),
                content,
                content_type: "text/markdown".into(),
            });
        }
        Ok(out)
    }
}

/// Whether `id` looks like a file id (32 hex digits), so it is safe in a path.
pub fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Registers the health tools, resources and prompt.
pub fn register(catalogue: &mut Catalogue, service: Arc<HealthService>) {
    calls::register_tools(catalogue, service.clone());
    catalogue.add_resources(Arc::new(SummaryResources {
        service: service.clone(),
    }));
    catalogue.add_prompt(Arc::new(ReviewPrompt {
        definition: Prompt::new(
            "health_review",
            Some("Review an uploaded health file: summary, trends and data quality, without diagnosing."),
            Some(vec![
                PromptArgument::new("file_id")
                    .with_description("The file to review (from health_list_files)")
                    .with_required(true),
                PromptArgument::new("focus")
                    .with_description("What to look at most, e.g. sleep, glucose, training load")
                    .with_required(false),
            ]),
        ),
        service,
    }));
}

/// Resource URI of a file's summary.
pub fn summary_uri(id: &str) -> String {
    format!("health://files/{id}/summary")
}

// === resources ===

struct SummaryResources {
    service: Arc<HealthService>,
}

impl ResourceHandler for SummaryResources {
    fn list(&self, ctx: &RequestContext) -> Vec<Resource> {
        self.service
            .indexed(&ctx.principal.name)
            .into_iter()
            .map(|(id, name)| {
                Resource::new(summary_uri(&id), format!("Health summary: {name}"))
                    .with_description(format!("Summary of the uploaded health file {name}"))
                    .with_mime_type("text/markdown")
            })
            .collect()
    }

    fn templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new("health://files/{id}/summary", "Health file summary")
                .with_description("The Markdown summary of one of your uploaded health files")
                .with_mime_type("text/markdown"),
        ]
    }

    fn read(
        &self,
        ctx: RequestContext,
        uri: &str,
    ) -> Option<LocalBoxFuture<'static, Result<ReadResourceResult, ErrorData>>> {
        let id = uri
            .strip_prefix("health://files/")?
            .strip_suffix("/summary")?
            .to_owned();
        let service = self.service.clone();
        let uri = uri.to_owned();
        Some(Box::pin(async move {
            let owner = ctx.principal.name.to_string();
            let rec = service
                .store
                .run(move |s| s.get_file(&owner, &id))
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
                .ok_or_else(|| {
                    ErrorData::resource_not_found(
                        format!(
                            "no health file behind {uri}; list your files with health_list_files"
                        ),
                        None,
                    )
                })?;
            Ok(ReadResourceResult::new(vec![ResourceContents::text(
                render::markdown(&rec),
                uri,
            )
            .with_mime_type("text/markdown")]))
        }))
    }

    fn complete(&self, template: &str, argument: &str, _value: &str) -> Option<Vec<String>> {
        // Completions carry no principal here, so ids are not offered across principals.
        (template == "health://files/{id}/summary" && argument == "id").then(Vec::new)
    }
}

// === prompt ===

struct ReviewPrompt {
    definition: Prompt,
    service: Arc<HealthService>,
}

impl PromptHandler for ReviewPrompt {
    fn definition(&self) -> &Prompt {
        &self.definition
    }

    fn get(
        &self,
        ctx: RequestContext,
        args: HashMap<String, String>,
    ) -> LocalBoxFuture<'static, Result<GetPromptResult, ErrorData>> {
        let file_id = args.get("file_id").cloned().unwrap_or_default();
        let known = self
            .service
            .indexed(&ctx.principal.name)
            .into_iter()
            .find(|(id, _)| *id == file_id);
        let focus = args
            .get("focus")
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty());
        let result = match known {
            None => Err(ErrorData::invalid_params(
                format!("no health file {file_id:?}; list your files with health_list_files"),
                None,
            )),
            Some((id, name)) => {
                let focus_line = focus
                    .map(|f| format!(" Pay most attention to: {f}."))
                    .unwrap_or_default();
                let text = format!(
                    "Review my health data in the uploaded file \"{name}\" (file_id {id}).{focus_line}\n\
                     1. Call health_summary with file_id \"{id}\" and tell me what the file covers.\n\
                     2. For the metrics that matter most, call health_query with granularity \"week\" \
                     (and \"day\" where detail helps) and describe the trends with figures.\n\
                     3. Point out data-quality issues from the warnings and skipped records.\n\
                     Stay factual: describe patterns and suggest what to discuss with a clinician; do not diagnose."
                );
                Ok(
                    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                        .with_description(format!("Review of the health file {name}")),
                )
            }
        };
        Box::pin(futures::future::ready(result))
    }

    fn complete(
        &self,
        ctx: RequestContext,
        argument: &str,
        value: &str,
    ) -> LocalBoxFuture<'static, Vec<String>> {
        let values = if argument == "file_id" {
            self.service
                .indexed(&ctx.principal.name)
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| id.starts_with(value))
                .collect()
        } else {
            Vec::new()
        };
        Box::pin(futures::future::ready(values))
    }
}

/// How long an upload link lives, for messages.
pub fn ttl_minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60)
}
