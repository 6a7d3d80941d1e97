//! Reading the store directly when no node runs: `list`, `show`, `matches` and
//! `export` give the same answers as through the API, from the posts on disk.
//!
//! sled locks its database, so this only happens while no node has it open; a node
//! started meanwhile waits a moment for the lock (see `Store::open`). Nothing here
//! writes a post.

use aidmesh::api::json::{MatchJson, PostJson, PostMatchesJson};
use aidmesh::listing::Listing;
use aidmesh::proto::Status;
use aidmesh::{DataDir, Store};
use anyhow::Context;

/// Opens the data dir's store (which must exist).
pub fn open_store(data_dir: &DataDir) -> anyhow::Result<Store> {
    Store::open(&data_dir.db()).context("reading the stored posts")
}

/// `list`.
pub fn list(store: &Store, listing: &Listing) -> anyhow::Result<Vec<PostJson>> {
    let posts = aidmesh::listing::list(store, listing, aidmesh::clock::now_ms())?;
    Ok(posts.iter().map(|p| PostJson::from(p.post())).collect())
}

/// `show`.
pub fn show(store: &Store, id: &str) -> anyhow::Result<PostJson> {
    let id = aidmesh::ids::resolve_post(store, id)?;
    let p = store
        .get(&id)?
        .ok_or_else(|| anyhow::anyhow!("no post with id {id}"))?;
    Ok(PostJson::from(p.post()))
}

/// `matches --post ID`.
pub fn post_matches(store: &Store, id: &str, limit: usize) -> anyhow::Result<Vec<MatchJson>> {
    let id = aidmesh::ids::resolve_post(store, id)?;
    let p = store
        .get(&id)?
        .ok_or_else(|| anyhow::anyhow!("no post with id {id}"))?;
    let found = aidmesh::matcher::rank(store, p.post(), aidmesh::clock::now_ms(), limit)?;
    Ok(found.iter().map(MatchJson::from).collect())
}

/// `matches`: each open post of `author`, newest first, with its best matches.
pub fn matches(
    store: &Store,
    author: &aidmesh::proto::AuthorKey,
    limit: usize,
) -> anyhow::Result<Vec<PostMatchesJson>> {
    let now = aidmesh::clock::now_ms();
    let mut own: Vec<aidmesh::proto::Post> = store
        .by_author(author)?
        .into_iter()
        .map(|p| p.into_parts().0)
        .filter(|p| p.status == Status::Open && !p.is_expired(now))
        .collect();
    own.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
    own.iter()
        .map(|p| {
            let found = aidmesh::matcher::rank(store, p, now, limit)?;
            Ok(PostMatchesJson {
                post: PostJson::from(p),
                matches: found.iter().map(MatchJson::from).collect(),
            })
        })
        .collect()
}

/// `export`: every stored post as an export line.
pub fn export(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    for p in store.all() {
        out.push_str(&aidmesh::transfer::export_line(&p?)?);
        out.push('\n');
    }
    Ok(out)
}
