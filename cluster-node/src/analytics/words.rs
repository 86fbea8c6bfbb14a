//! Words of a message, as the statistics count them: lowercased, split on every character that is not
//! a letter or a digit (Unicode's `Alphabetic` and `Numeric`, so `Straße`, `日本` and `ошибка` are
//! words), with a small built-in list of English stop words left out.
//!
//! An apostrophe splits too (`don't` is `don` and `t`), so the fragments that leaves are stop words.

use std::collections::BTreeMap;

/// Words too common to say anything about a conversation. Sorted, so membership is a binary search
/// (a test checks the order).
pub const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be",
    "because", "been", "before", "but", "by", "can", "could", "d", "did", "do", "does", "don",
    "for", "from", "get", "got", "had", "has", "have", "he", "her", "here", "him", "his", "how",
    "i", "if", "in", "into", "is", "it", "its", "just", "ll", "m", "me", "more", "my", "no", "not",
    "now", "of", "off", "oh", "ok", "on", "one", "or", "our", "out", "re", "s", "she", "so",
    "some", "t", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "to", "too", "up", "us", "ve", "was", "we", "were", "what", "when", "where", "which", "who",
    "why", "will", "with", "would", "yes", "you", "your",
];

/// Whether `word` (already lowercased) is a stop word.
pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// The counted words of `text`, in order: lowercased, stop words left out.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .filter(|word| !is_stop_word(word))
}

/// Adds the counted words of `text` to `counts`.
pub fn count_into(text: &str, counts: &mut BTreeMap<String, u64>) {
    for word in words(text) {
        *counts.entry(word).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        words(text).collect()
    }

    #[test]
    fn the_stop_words_are_sorted_lowercase_and_unique() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(
            STOP_WORDS
                .iter()
                .all(|word| word.to_lowercase() == *word && !word.is_empty())
        );
    }

    #[test]
    fn words_are_lowercased_runs_of_letters_and_digits_without_stop_words() {
        assert_eq!(
            all("The Deploy failed, AGAIN: see ticket #4711 (and the logs)!"),
            ["deploy", "failed", "again", "see", "ticket", "4711", "logs"]
        );
    }

    #[test]
    fn an_apostrophe_splits_and_its_fragments_are_stop_words() {
        assert_eq!(all("don't you're we'll it's"), Vec::<String>::new());
        assert_eq!(all("Ada's build"), ["ada", "build"]);
    }

    #[test]
    fn letters_of_every_script_count_and_lowercase() {
        assert_eq!(
            all("Straße CAFÉ Ошибка 日本語 x²"),
            ["straße", "café", "ошибка", "日本語", "x²"]
        );
    }

    #[test]
    fn emoji_punctuation_and_spaces_alone_make_no_word() {
        assert_eq!(all("🎉 -- ... \n\t 👍👍"), Vec::<String>::new());
        assert_eq!(all(""), Vec::<String>::new());
    }

    #[test]
    fn counts_add_up_across_texts() {
        let mut counts = BTreeMap::new();
        count_into("ship it, ship it now", &mut counts);
        count_into("Ship!", &mut counts);
        assert_eq!(counts, BTreeMap::from([("ship".to_owned(), 3)]));
    }
}
