//! Search queries: what a user typed, turned into an FTS5 expression over `messages_search`, and the
//! marking of the matched parts of a result.
//!
//! A query is its words (runs of letters and digits; everything else separates them), each matched as a
//! prefix of a word of the message, all of them required: "hel wor" finds "Hello, world". Words are
//! quoted in the expression, so nothing a user types is FTS5 syntax. The index folds case and removes
//! diacritics (`unicode61 remove_diacritics 2`); marking folds case only, so a diacritic-insensitive match
//! is found but its word is not marked.

use super::error::ServiceError;

/// Most words a query may have; more would only slow the index down.
pub const MAX_WORDS: usize = 8;
/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A query with at least one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Lowercase.
    words: Vec<String>,
}

fn is_word_char(character: char) -> bool {
    character.is_alphanumeric()
}

impl SearchQuery {
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(ServiceError::invalid(format!(
                "a search must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|character: char| !is_word_char(character)) {
            let word = word.to_lowercase();
            if !word.is_empty() && !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            return Err(ServiceError::invalid(
                "a search needs at least one word (letters or digits)",
            ));
        }
        if words.len() > MAX_WORDS {
            return Err(ServiceError::invalid(format!(
                "a search may have at most {MAX_WORDS} words"
            )));
        }
        Ok(SearchQuery { words })
    }

    /// `"hel"* "wor"*`: every word as a quoted prefix (a word holds no `"`, so no escaping is needed).
    pub fn expression(&self) -> String {
        self.words
            .iter()
            .map(|word| format!("\"{word}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `content` cut into runs, each marked when it is a word that starts with one of the query's
    /// words; the runs put together are `content` again.
    pub fn highlight(&self, content: &str) -> Vec<(String, bool)> {
        let mut runs: Vec<(String, bool)> = Vec::new();
        let mut push = |text: &str, marked: bool| match runs.last_mut() {
            Some((last, last_marked)) if *last_marked == marked => last.push_str(text),
            _ => runs.push((text.to_owned(), marked)),
        };
        let mut rest = content;
        while !rest.is_empty() {
            let word_end = rest
                .char_indices()
                .find(|(_, character)| !is_word_char(*character))
                .map_or(rest.len(), |(index, _)| index);
            if word_end > 0 {
                let word = &rest[..word_end];
                let lower = word.to_lowercase();
                let marked = self.words.iter().any(|prefix| lower.starts_with(prefix));
                push(word, marked);
                rest = &rest[word_end..];
            } else {
                let gap_end = rest
                    .char_indices()
                    .find(|(_, character)| is_word_char(*character))
                    .map_or(rest.len(), |(index, _)| index);
                push(&rest[..gap_end], false);
                rest = &rest[gap_end..];
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_quoted_prefixes_and_syntax_is_not_passed_through() {
        let query = SearchQuery::parse("Hello, WOR* \"x\" OR NEAR(a b)").unwrap();
        assert_eq!(
            query.expression(),
            r#""hello"* "wor"* "x"* "or"* "near"* "a"* "b"*"#
        );
        assert_eq!(
            SearchQuery::parse("café café").unwrap().expression(),
            r#""café"*"#
        );
        for empty in ["", "   ", "*** ,,, \"\""] {
            assert!(matches!(
                SearchQuery::parse(empty),
                Err(ServiceError::Invalid(_))
            ));
        }
        assert!(SearchQuery::parse("a b c d e f g h i").is_err());
        assert!(SearchQuery::parse(&"a".repeat(201)).is_err());
    }

    #[test]
    fn marks_every_word_that_starts_with_a_query_word() {
        let query = SearchQuery::parse("hel wor").unwrap();
        let runs = query.highlight("Hello, world! Shell helps.");
        assert_eq!(
            runs,
            vec![
                ("Hello".to_owned(), true),
                (", ".to_owned(), false),
                ("world".to_owned(), true),
                ("! Shell ".to_owned(), false),
                ("helps".to_owned(), true),
                (".".to_owned(), false),
            ]
        );
        let joined: String = runs.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(joined, "Hello, world! Shell helps.");
        assert_eq!(
            query.highlight("nothing"),
            vec![("nothing".to_owned(), false)]
        );
        assert_eq!(query.highlight(""), vec![]);
    }
}
