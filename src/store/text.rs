//! Words for text search: what the index stores and what a query term must match.
//!
//! A post matches a text query when every query term is the start of a word of its
//! title or body, ignoring case ("bik" finds "Bikes"). Words are runs of letters and
//! digits. There is no word index (it cost more on every write than it saved on
//! searches): a search scans posts newest first and stops at its limit.

use aidmesh_proto::Post;

/// The lowercase words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The query terms of a search string.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = words(query).collect();
    terms.sort();
    terms.dedup();
    terms
}

/// Whether every term starts a word of the post's title or body.
pub fn matches(post: &Post, terms: &[String]) -> bool {
    if terms.is_empty() {
        return true;
    }
    let words: Vec<String> = words(&post.title).chain(words(&post.body)).collect();
    terms
        .iter()
        .all(|t| words.iter().any(|w| w.starts_with(t.as_str())))
}
