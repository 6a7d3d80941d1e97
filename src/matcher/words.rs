//! Words for matching: what two posts "say in common".
//!
//! A text becomes a sorted set of word stems: split on anything that is not a letter
//! or digit, lowercased, accents stripped (a hand table for the Latin-1 and
//! Latin Extended-A letters, which covers the languages aidmesh is used in so far),
//! stop words and words shorter than three letters dropped, and a light suffix
//! stemmer applied (`bikes`, `biking` → `bik`). Crude on purpose: it only has to make
//! "Winter coats" and "a warm coat for winter" share two words, cheaply.

/// Words that say nothing about what is offered or needed.
const STOP_WORDS: &[&str] = &[
    "about", "after", "all", "also", "and", "any", "anyone", "are", "but", "can", "could", "for",
    "free", "from", "get", "has", "have", "help", "her", "his", "how", "into", "its", "just",
    "like", "looking", "more", "need", "needed", "needs", "not", "offer", "offering", "one", "our",
    "out", "please", "some", "someone", "that", "the", "their", "them", "there", "this", "those",
    "very", "want", "was", "week", "what", "when", "who", "will", "with", "would", "you", "your",
];

/// The ASCII letters a Latin-1 or Latin Extended-A letter is read as, if it has an
/// accent (or is a ligature) worth folding.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// `word` lowercased with its accents folded.
pub fn normalise(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    normalise_into(word, &mut out);
    out
}

/// [`normalise`] appending to `out` (no allocation once `out` is large enough).
fn normalise_into(word: &str, out: &mut String) {
    for c in word.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(s) => out.push_str(s),
            None => out.push(c),
        }
    }
}

/// A light English suffix stemmer: plural `s`/`es`/`ies`, `ing`, `ed`, a final `e`
/// and a doubled final consonant. Both sides of a comparison go through it, so it
/// only has to be consistent, not right.
pub fn stem(word: &str) -> String {
    let mut w = word.to_string();
    stem_in_place(&mut w);
    w
}

/// [`stem`] without allocating.
fn stem_in_place(w: &mut String) {
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        w.pop();
    }
    let n = w.chars().count();
    if n > 5 && w.ends_with("ing") {
        w.truncate(w.len() - 3);
        undouble(w);
    } else if n > 4 && w.ends_with("ed") {
        w.truncate(w.len() - 2);
        undouble(w);
    }
    if w.chars().count() > 3 && w.ends_with('e') {
        w.pop();
    }
}

/// `runn` → `run`, but `fill`, `pass`, `buzz` stay.
fn undouble(w: &mut String) {
    let b = w.as_bytes();
    if b.len() >= 3 {
        let (x, y) = (b[b.len() - 1], b[b.len() - 2]);
        if x == y && x.is_ascii_alphabetic() && !b"aeiouslz".contains(&x) {
            w.pop();
        }
    }
}

/// The sorted, de-duplicated stems of the meaningful words of `text`.
pub fn stems(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(normalise)
        .filter(|w| w.chars().count() >= 3 && STOP_WORDS.binary_search(&w.as_str()).is_err())
        .map(|w| stem(&w))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The stems of `text` (as [`stems`] finds them) as 64-bit FNV-1a hashes, appended to
/// `out` unsorted: what ranking compares, with one buffer for all words instead of
/// two strings per word. Two different stems share a hash with odds of 2^-64.
pub fn stem_hashes(text: &str, out: &mut Vec<u64>) {
    let mut buf = String::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
    {
        buf.clear();
        normalise_into(word, &mut buf);
        if buf.chars().count() < 3 || STOP_WORDS.binary_search(&buf.as_str()).is_ok() {
            continue;
        }
        stem_in_place(&mut buf);
        out.push(fnv1a(buf.as_bytes()));
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
/// How many stems two sorted stem sets share.
pub fn shared<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn case_accents_and_suffixes() {
        assert_eq!(normalise("CAFÉ"), "cafe");
        assert_eq!(normalise("Straße"), "strasse");
        assert_eq!(stem("bikes"), stem("bike"));
        assert_eq!(stem("biking"), stem("bike"));
        assert_eq!(stem("running"), stem("run"));
        assert_eq!(stem("cooked"), stem("cook"));
        assert_eq!(stem("berries"), stem("berry"));
        assert_eq!(stem("boxes"), stem("box"));
        assert_eq!(
            stems("Winter COATS for kids"),
            vec!["coat".to_string(), "kid".into(), "winter".into()]
        );
    }

    #[test]
    fn stem_hashes_are_the_hashes_of_the_stems() {
        for text in [
            "Warm winter coat, size M",
            "Need winter coats and crêpes for the CHILDREN's party",
            "Ladder, drill & tools — moving help on Saturday",
        ] {
            let mut got = Vec::new();
            stem_hashes(text, &mut got);
            got.sort_unstable();
            got.dedup();
            let mut want: Vec<u64> = stems(text).iter().map(|s| fnv1a(s.as_bytes())).collect();
            want.sort_unstable();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn shared_counts_common_stems() {
        let a = stems("Warm winter coat, size M");
        let b = stems("Need winter coats and crêpes");
        assert_eq!(shared(&a, &b), 2);
        assert_eq!(shared(&stems("Crêpes"), &stems("CREPE")), 1);
    }
}
