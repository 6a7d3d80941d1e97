//! Stop words per language: the words that say nothing about what is offered or
//! needed, and the weak words that say a little.
//!
//! Every list is written folded (lowercase, no accents, see [`super::fold`]) and
//! sorted. A folded word is looked up once in a table built from all the lists, which
//! says in which of them it is: every post is analysed when it is stored, and one hash
//! lookup per word costs a fraction of eight binary searches. Besides each language's
//! function words, the stop lists hold the words every post says whatever it is about
//! ("need", "offer", "help", "busco", "ofrezco", "suche", "biete"): two posts sharing
//! them have nothing in common. The stop lists also decide a short post's language
//! (see [`super::lang`]), so they hold only words typical of their language.
//!
//! Weak words name who or what kind of thing a post is for rather than the thing
//! itself ("kids", "family", "size"): a shared weak word counts for little, so a
//! request for nappies "for the kids" does not meet kids' winter coats on it alone.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use super::Lang;

/// English.
const EN: &[&str] = &[
    "about",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anyone",
    "anything",
    "are",
    "aren",
    "around",
    "asap",
    "available",
    "away",
    "back",
    "be",
    "because",
    "been",
    "before",
    "bit",
    "both",
    "but",
    "by",
    "can",
    "could",
    "couple",
    "didn",
    "do",
    "does",
    "doesn",
    "don",
    "each",
    "either",
    "etc",
    "even",
    "every",
    "few",
    "for",
    "from",
    "get",
    "give",
    "giving",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "hello",
    "help",
    "her",
    "here",
    "hi",
    "him",
    "his",
    "how",
    "id",
    "if",
    "im",
    "in",
    "into",
    "is",
    "isn",
    "it",
    "its",
    "ive",
    "just",
    "last",
    "like",
    "ll",
    "looking",
    "lot",
    "lots",
    "many",
    "me",
    "more",
    "much",
    "my",
    "need",
    "needed",
    "needing",
    "needs",
    "neither",
    "next",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "offer",
    "offered",
    "offering",
    "offers",
    "on",
    "one",
    "only",
    "or",
    "other",
    "others",
    "our",
    "out",
    "over",
    "own",
    "please",
    "re",
    "really",
    "same",
    "several",
    "she",
    "should",
    "since",
    "so",
    "some",
    "someone",
    "something",
    "soon",
    "still",
    "such",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "too",
    "until",
    "up",
    "us",
    "ve",
    "very",
    "want",
    "wanted",
    "was",
    "wasn",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "will",
    "with",
    "would",
    "yet",
    "you",
    "your",
];

/// Spanish.
const ES: &[&str] = &[
    "al",
    "algo",
    "alguien",
    "alguna",
    "alguno",
    "algunos",
    "ayuda",
    "ayudar",
    "ayudo",
    "busca",
    "buscamos",
    "busco",
    "como",
    "con",
    "cual",
    "cuando",
    "de",
    "del",
    "donde",
    "el",
    "ella",
    "en",
    "entre",
    "era",
    "es",
    "esa",
    "ese",
    "esta",
    "estan",
    "este",
    "esto",
    "estoy",
    "fue",
    "gracias",
    "hay",
    "la",
    "las",
    "le",
    "les",
    "lo",
    "los",
    "mas",
    "me",
    "mi",
    "mis",
    "mucho",
    "muy",
    "necesita",
    "necesitamos",
    "necesito",
    "ni",
    "no",
    "nos",
    "nuestra",
    "nuestro",
    "ofrece",
    "ofrecemos",
    "ofrezco",
    "para",
    "pero",
    "poco",
    "por",
    "porque",
    "puede",
    "puedo",
    "que",
    "quien",
    "se",
    "sea",
    "ser",
    "si",
    "sin",
    "sobre",
    "soy",
    "su",
    "sus",
    "tambien",
    "tenemos",
    "tener",
    "tengo",
    "un",
    "una",
    "unas",
    "uno",
    "unos",
    "ya",
    "yo",
];

/// French.
const FR: &[&str] = &[
    "ai",
    "aide",
    "aider",
    "au",
    "aussi",
    "aux",
    "avec",
    "avez",
    "avoir",
    "besoin",
    "bonjour",
    "ce",
    "cela",
    "ces",
    "cet",
    "cette",
    "cherche",
    "cherchons",
    "dans",
    "de",
    "des",
    "donne",
    "du",
    "elle",
    "en",
    "est",
    "et",
    "etre",
    "eu",
    "il",
    "ils",
    "je",
    "la",
    "le",
    "les",
    "leur",
    "lui",
    "ma",
    "mais",
    "me",
    "merci",
    "mes",
    "moi",
    "mon",
    "ne",
    "nos",
    "notre",
    "nous",
    "on",
    "ou",
    "par",
    "pas",
    "peut",
    "peux",
    "plus",
    "pour",
    "propose",
    "proposons",
    "qu",
    "que",
    "qui",
    "sa",
    "se",
    "ses",
    "son",
    "sont",
    "sur",
    "ta",
    "te",
    "tes",
    "toi",
    "ton",
    "tres",
    "tu",
    "un",
    "une",
    "vos",
    "votre",
    "vous",
];

/// German.
const DE: &[&str] = &[
    "aber", "alle", "als", "am", "an", "auch", "auf", "aus", "bei", "biete", "bieten", "bin",
    "bis", "bitte", "brauche", "brauchen", "da", "damit", "danke", "das", "dass", "dem", "den",
    "der", "des", "die", "dir", "doch", "du", "ein", "eine", "einem", "einen", "einer", "es",
    "etwas", "fur", "gesucht", "gibt", "habe", "haben", "hat", "hier", "hilfe", "ich", "ihr", "im",
    "in", "ist", "jemand", "kann", "konnen", "mal", "mein", "meine", "meinem", "meinen", "meiner",
    "mich", "mir", "mit", "nach", "nicht", "noch", "nur", "oder", "sehr", "sich", "sie", "sind",
    "suche", "suchen", "uber", "um", "und", "uns", "unser", "unsere", "vom", "von", "vor", "war",
    "was", "wer", "wie", "wir", "wird", "zu", "zum", "zur",
];

/// Italian.
const IT: &[&str] = &[
    "ai", "aiuto", "al", "alla", "alle", "anche", "cerco", "che", "chi", "ci", "come", "con", "da",
    "dal", "dalla", "degli", "dei", "del", "della", "delle", "di", "gli", "grazie", "ha", "ho",
    "il", "in", "io", "la", "le", "lo", "ma", "mi", "mia", "mio", "molto", "ne", "nel", "nella",
    "non", "offro", "per", "piu", "qualcuno", "questo", "se", "si", "sono", "su", "sua", "suo",
    "un", "una", "uno",
];

/// Portuguese.
const PT: &[&str] = &[
    "ajuda", "ao", "aos", "as", "com", "como", "da", "das", "de", "do", "dos", "ela", "ele", "em",
    "essa", "esse", "esta", "este", "eu", "isso", "mais", "mas", "meu", "minha", "muito", "na",
    "nao", "nas", "no", "nos", "obrigado", "ofereco", "os", "ou", "para", "pela", "pelo", "por",
    "preciso", "procuro", "que", "se", "sem", "seu", "sua", "tambem", "tenho", "um", "uma",
];

/// Dutch.
const NL: &[&str] = &[
    "aan", "al", "als", "bent", "bied", "bij", "dan", "dat", "de", "die", "dit", "een", "en", "er",
    "gezocht", "heb", "hebben", "heeft", "het", "hier", "hij", "hulp", "ik", "in", "is", "je",
    "jij", "kan", "maar", "me", "met", "mijn", "na", "naar", "niet", "nodig", "of", "om", "ons",
    "onze", "ook", "op", "over", "te", "tot", "uit", "van", "voor", "wat", "we", "wie", "wij",
    "zijn", "zoek", "zou",
];

/// Weak words, all languages together (folded, sorted).
const WEAK: &[&str] = &[
    "abend",
    "abends",
    "afternoon",
    "afternoons",
    "an",
    "annee",
    "annees",
    "anni",
    "ano",
    "anos",
    "ans",
    "avond",
    "baby",
    "babys",
    "big",
    "buena",
    "bueno",
    "casa",
    "child",
    "children",
    "city",
    "condition",
    "dag",
    "dagen",
    "day",
    "days",
    "dia",
    "dias",
    "dienstag",
    "dimanche",
    "dinsdag",
    "domenica",
    "domingo",
    "domingos",
    "donderdag",
    "donnerstag",
    "enfant",
    "enfants",
    "evening",
    "evenings",
    "familia",
    "familie",
    "famille",
    "family",
    "freitag",
    "friday",
    "giorni",
    "giorno",
    "giovedi",
    "good",
    "grand",
    "grande",
    "groot",
    "gross",
    "grosse",
    "gut",
    "gute",
    "heure",
    "heures",
    "hijo",
    "hijos",
    "home",
    "hora",
    "horas",
    "hour",
    "hours",
    "house",
    "jaar",
    "jahr",
    "jahre",
    "jahren",
    "jeudi",
    "jour",
    "jours",
    "jueves",
    "kid",
    "kids",
    "kind",
    "kinder",
    "kinderen",
    "klein",
    "kleine",
    "large",
    "little",
    "lundi",
    "lunedi",
    "lunes",
    "maand",
    "maandag",
    "manana",
    "mananas",
    "manha",
    "mardi",
    "martedi",
    "martes",
    "matin",
    "matins",
    "mattina",
    "mercoledi",
    "mercredi",
    "mes",
    "mese",
    "meses",
    "mesi",
    "miercoles",
    "mittwoch",
    "mois",
    "monat",
    "monate",
    "monday",
    "montag",
    "month",
    "months",
    "morgen",
    "morgens",
    "morning",
    "mornings",
    "nachmittag",
    "nachmittags",
    "new",
    "night",
    "nights",
    "nino",
    "ninos",
    "noche",
    "noches",
    "noite",
    "nouveau",
    "nueva",
    "nuevo",
    "ochtend",
    "old",
    "people",
    "pequeno",
    "petit",
    "petite",
    "quarta",
    "quinta",
    "sabado",
    "sabados",
    "sabato",
    "samedi",
    "samstag",
    "saturday",
    "segunda",
    "semaine",
    "semaines",
    "semana",
    "semanas",
    "sera",
    "settimana",
    "settimane",
    "sexta",
    "size",
    "small",
    "soir",
    "soiree",
    "soirs",
    "sonntag",
    "stunde",
    "stunden",
    "sunday",
    "tag",
    "tage",
    "tagen",
    "taille",
    "talla",
    "tarde",
    "tardes",
    "terca",
    "thursday",
    "time",
    "today",
    "tomorrow",
    "tuesday",
    "uhr",
    "used",
    "vendredi",
    "venerdi",
    "viernes",
    "vrijdag",
    "wednesday",
    "week",
    "weekday",
    "weekdays",
    "weekend",
    "weekends",
    "weeks",
    "weken",
    "woche",
    "wochen",
    "wochenende",
    "woensdag",
    "year",
    "years",
    "zaterdag",
    "zondag",
];

/// The stop list of `lang` (empty for a language without one).
pub(super) fn list(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::English => EN,
        Lang::Spanish => ES,
        Lang::French => FR,
        Lang::German => DE,
        Lang::Italian => IT,
        Lang::Portuguese => PT,
        Lang::Dutch => NL,
        Lang::Unknown => &[],
    }
}

/// Bit of the weak list in a word's [`lists_of`] mask; bit `i` below it is the stop
/// list of `Lang::STEMMED[i]`.
const WEAK_BIT: u8 = 1 << 7;
const _: () = assert!(
    Lang::STEMMED.len() < 8,
    "one bit per stop list, below WEAK_BIT"
);

/// Each word of any list, with the lists it is in.
static LISTS: LazyLock<FxHashMap<&'static str, u8>> = LazyLock::new(|| {
    let mut table = FxHashMap::default();
    for (i, lang) in Lang::STEMMED.iter().enumerate() {
        for word in list(*lang) {
            *table.entry(*word).or_default() |= 1 << i;
        }
    }
    for word in WEAK {
        *table.entry(*word).or_default() |= WEAK_BIT;
    }
    table
});

/// The lists the folded `word` is in: bit `i` for the stop list of
/// `Lang::STEMMED[i]`, [`WEAK_BIT`] for the weak words.
pub(super) fn lists_of(word: &str) -> u8 {
    LISTS.get(word).copied().unwrap_or(0)
}

fn stop_bit(lang: Lang) -> u8 {
    // A text whose language is unknown drops the English stop words.
    let lang = if lang == Lang::Unknown {
        Lang::English
    } else {
        lang
    };
    lang.index().map_or(0, |i| 1 << i)
}

/// Whether the folded `word` is a stop word of `lang`. A text whose language is
/// unknown drops the English stop words (the language most mixed into others).
pub fn is_stop(lang: Lang, word: &str) -> bool {
    lists_of(word) & stop_bit(lang) != 0
}

/// Whether the folded `word` is a weak word (in any language).
pub fn is_weak(word: &str) -> bool {
    lists_of(word) & WEAK_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_folded() {
        for lang in Lang::STEMMED.iter().copied() {
            let l = list(lang);
            assert!(l.windows(2).all(|w| w[0] < w[1]), "{lang:?}");
            for w in l {
                assert_eq!(&super::super::fold(w), w, "{lang:?}");
            }
        }
        assert!(WEAK.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_table_says_what_the_lists_say() {
        let mut words: Vec<&str> = WEAK.to_vec();
        for lang in Lang::STEMMED.iter().copied() {
            words.extend(list(lang));
        }
        words.extend(["", "bike", "winterjacke", "ayuda", "zzz"]);
        for w in words {
            for lang in Lang::STEMMED.iter().copied().chain([Lang::Unknown]) {
                let sorted = match lang {
                    Lang::Unknown => EN,
                    l => list(l),
                };
                assert_eq!(
                    is_stop(lang, w),
                    sorted.binary_search(&w).is_ok(),
                    "{w} {lang:?}"
                );
            }
            assert_eq!(is_weak(w), WEAK.binary_search(&w).is_ok(), "{w}");
        }
    }
}
