//! Words for text search: what the index stores and what a query term must match.
//!
//! A post matches a text query when every query term is the start of a word of its
//! title or body, ignoring case ("bik" finds "Bikes"). Words are runs of letters and
//! digits; the index keeps each distinct word of two or more characters, cut to
//! [`MAX_WORD_BYTES`].

use std::collections::BTreeSet;

use aidmesh_proto::Post;

/// Longest word kept in the index; longer query terms are matched on this prefix by
/// the index and in full by the filter.
pub const MAX_WORD_BYTES: usize = 24;

/// The lowercase words of `text`.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn truncate(word: &str) -> &str {
    if word.len() <= MAX_WORD_BYTES {
        return word;
    }
    let mut end = MAX_WORD_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// The distinct index entries of a post's title and body.
pub fn index_words(post: &Post) -> BTreeSet<String> {
    words(&post.title)
        .chain(words(&post.body))
        .filter(|w| w.chars().count() >= 2)
        .map(|w| truncate(&w).to_owned())
        .collect()
}

/// The query terms of a search string.
pub fn terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = words(query).collect();
    terms.sort();
    terms.dedup();
    terms
}

/// The index prefix to look a term up with, if the term is long enough for the index.
pub fn index_term(term: &str) -> Option<&str> {
    (term.chars().count() >= 2).then(|| truncate(term))
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
