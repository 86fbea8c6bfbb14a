//! The map and reduce steps, pure: the messages of a range become a [`Partial`] (the *map*), partials
//! add up (`Partial::add`, also the *combine* a node does over its own ranges), and the sum becomes
//! the answer's [`Stats`] (the *reduce*: the top words are taken only after every count is summed, so
//! a word that is second everywhere but first nowhere still wins).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::storage::stats::RangeMessage;
use crate::storage::{UnixMillis, UserId, UserTag};

use super::words;

/// How many words the answer lists.
pub const TOP_WORDS: usize = 20;

const DAY_MS: i64 = 86_400_000;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(pub i64);

impl Day {
    /// The UTC day `at` falls on.
    pub fn of(at: UnixMillis) -> Day {
        Day(at.0.div_euclid(DAY_MS))
    }

    /// `2026-01-01`.
    pub fn label(self) -> String {
        let seconds = self.0.saturating_mul(86_400);
        match time::OffsetDateTime::from_unix_timestamp(seconds) {
            Ok(at) => format!(
                "{:04}-{:02}-{:02}",
                at.year(),
                u8::from(at.month()),
                at.day()
            ),
            // Outside ±9999 years: no stored timestamp is, but say something rather than panic.
            Err(_) => format!("day {}", self.0),
        }
    }
}

/// One member's messages on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDayCount {
    pub user_id: UserId,
    pub username: String,
    pub tag: UserTag,
    pub day: Day,
    pub messages: u64,
}

/// What a set of messages counts for: the result of mapping one range, or of adding several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WirePartial", from = "WirePartial")]
pub struct Partial {
    pub messages: u64,
    /// Every counted word (not only the top: the top is taken after the sum).
    pub words: BTreeMap<String, u64>,
    /// Messages per (day, sender), with the sender's name.
    pub members: BTreeMap<(Day, UserId), MemberDayCount>,
}

impl Partial {
    /// The map step: what `messages` (the live messages of one range) count for.
    pub fn of_messages(messages: &[RangeMessage]) -> Partial {
        let mut partial = Partial::default();
        for message in messages {
            partial.messages += 1;
            words::count_into(&message.content, &mut partial.words);
            let day = Day::of(message.created_at);
            partial
                .members
                .entry((day, message.sender.id))
                .or_insert_with(|| MemberDayCount {
                    user_id: message.sender.id,
                    username: message.sender.username.clone(),
                    tag: message.sender.tag,
                    day,
                    messages: 0,
                })
                .messages += 1;
        }
        partial
    }

    /// Adds `other`'s counts to these (saturating: counts come from other nodes).
    pub fn add(&mut self, other: &Partial) {
        self.messages = self.messages.saturating_add(other.messages);
        for (word, count) in &other.words {
            let sum = self.words.entry(word.clone()).or_insert(0);
            *sum = sum.saturating_add(*count);
        }
        for (key, count) in &other.members {
            self.members
                .entry(*key)
                .and_modify(|sum| sum.messages = sum.messages.saturating_add(count.messages))
                .or_insert_with(|| count.clone());
        }
    }
}

/// A word and how often it was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCount {
    pub word: String,
    pub count: u64,
}

/// The answer's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    /// The `TOP_WORDS` most used words, most used first; ties in alphabetical order.
    pub top_words: Vec<WordCount>,
    /// By day, then name, tag and id.
    pub per_member_per_day: Vec<MemberDayCount>,
}

/// The reduce step: the sum of `partials`, with the top `top` words.
pub fn reduce<'a>(partials: impl IntoIterator<Item = &'a Partial>, top: usize) -> Stats {
    let mut sum = Partial::default();
    for partial in partials {
        sum.add(partial);
    }
    let mut per_member_per_day: Vec<MemberDayCount> = sum.members.into_values().collect();
    per_member_per_day.sort_by(|a, b| {
        (a.day, &a.username, a.tag, a.user_id).cmp(&(b.day, &b.username, b.tag, b.user_id))
    });
    Stats {
        messages: sum.messages,
        top_words: top_words(&sum.words, top),
        per_member_per_day,
    }
}

/// The `top` most used words: by count, most first, then alphabetically.
pub fn top_words(counts: &BTreeMap<String, u64>, top: usize) -> Vec<WordCount> {
    let mut all: Vec<(&String, &u64)> = counts.iter().collect();
    // Stable, and the map iterates alphabetically: equal counts stay in alphabetical order.
    all.sort_by(|a, b| b.1.cmp(a.1));
    all.into_iter()
        .take(top)
        .map(|(word, count)| WordCount {
            word: word.clone(),
            count: *count,
        })
        .collect()
}

/// How a [`Partial`] travels between nodes: JSON objects need string keys, so the member counts go
/// as a list.
#[derive(Serialize, Deserialize)]
struct WirePartial {
    messages: u64,
    words: BTreeMap<String, u64>,
    members: Vec<MemberDayCount>,
}

impl From<Partial> for WirePartial {
    fn from(partial: Partial) -> Self {
        WirePartial {
            messages: partial.messages,
            words: partial.words,
            members: partial.members.into_values().collect(),
        }
    }
}

impl From<WirePartial> for Partial {
    fn from(wire: WirePartial) -> Self {
        let mut members: BTreeMap<(Day, UserId), MemberDayCount> = BTreeMap::new();
        // A list that names a (day, member) twice is summed, never trusted to be unique.
        for count in wire.members {
            members
                .entry((count.day, count.user_id))
                .and_modify(|sum| sum.messages = sum.messages.saturating_add(count.messages))
                .or_insert(count);
        }
        Partial {
            messages: wire.messages,
            words: wire.words,
            members,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::UserRef;

    const NEW_YEAR: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn user(name: &str, tag: u16, id: u128) -> UserRef {
        UserRef {
            id: UserId(uuid::Uuid::from_u128(id)),
            username: name.to_owned(),
            tag: UserTag::new(tag).unwrap(),
        }
    }

    fn message(sender: &UserRef, at: i64, content: &str) -> RangeMessage {
        RangeMessage {
            sender: sender.clone(),
            created_at: UnixMillis(at),
            content: content.to_owned(),
        }
    }

    fn words_of(stats: &Stats) -> Vec<(&str, u64)> {
        stats
            .top_words
            .iter()
            .map(|w| (w.word.as_str(), w.count))
            .collect()
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(Day::of(UnixMillis(NEW_YEAR)).label(), "2026-01-01");
        assert_eq!(Day::of(UnixMillis(NEW_YEAR - 1)).label(), "2025-12-31");
        assert_eq!(Day::of(UnixMillis(0)).label(), "1970-01-01");
        assert_eq!(Day::of(UnixMillis(-1)).label(), "1969-12-31");
        assert_eq!(Day::of(UnixMillis(951_782_400_000)).label(), "2000-02-29");
    }

    #[test]
    fn a_range_maps_to_its_messages_words_and_member_days() {
        let ada = user("ada", 7, 1);
        let bob = user("bob", 42, 2);
        let partial = Partial::of_messages(&[
            message(&ada, NEW_YEAR - 1, "Ship the release"),
            message(&ada, NEW_YEAR + 5, "release notes, release!"),
            message(&bob, NEW_YEAR + 9, "notes?"),
        ]);
        assert_eq!(partial.messages, 3);
        assert_eq!(
            partial.words,
            BTreeMap::from([
                ("notes".to_owned(), 2),
                ("release".to_owned(), 3),
                ("ship".to_owned(), 1)
            ])
        );
        let members: Vec<(String, &str, u64)> = partial
            .members
            .values()
            .map(|c| (c.day.label(), c.username.as_str(), c.messages))
            .collect();
        assert_eq!(
            members,
            [
                ("2025-12-31".to_owned(), "ada", 1),
                ("2026-01-01".to_owned(), "ada", 1),
                ("2026-01-01".to_owned(), "bob", 1)
            ]
        );
    }

    #[test]
    fn the_top_is_taken_after_the_sum() {
        // "beta" leads no range but leads the sum.
        let one = Partial::of_messages(&[message(
            &user("ada", 1, 1),
            NEW_YEAR,
            "alpha alpha alpha beta beta",
        )]);
        let two = Partial::of_messages(&[message(
            &user("ada", 1, 1),
            NEW_YEAR + DAY_MS,
            "gamma gamma gamma beta beta",
        )]);
        assert_eq!(
            words_of(&reduce([&one], 1)),
            [("alpha", 3)],
            "one range alone"
        );
        let stats = reduce([&one, &two], 2);
        assert_eq!(words_of(&stats), [("beta", 4), ("alpha", 3)]);
        assert_eq!(stats.messages, 2);
    }

    #[test]
    fn equal_counts_are_listed_alphabetically_and_the_list_is_cut_at_top() {
        let counts = BTreeMap::from([
            ("pear".to_owned(), 2),
            ("apple".to_owned(), 2),
            ("fig".to_owned(), 5),
            ("kiwi".to_owned(), 1),
        ]);
        let top: Vec<(String, u64)> = top_words(&counts, 3)
            .into_iter()
            .map(|w| (w.word, w.count))
            .collect();
        assert_eq!(
            top,
            [
                ("fig".to_owned(), 5),
                ("apple".to_owned(), 2),
                ("pear".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn member_days_add_up_and_are_ordered_by_day_then_name() {
        let ada = user("ada", 7, 1);
        let zoe = user("zoe", 1, 2);
        let first = Partial::of_messages(&[
            message(&zoe, NEW_YEAR, "hi"),
            message(&ada, NEW_YEAR + 1, "hi"),
        ]);
        let second = Partial::of_messages(&[
            message(&ada, NEW_YEAR + 2, "hi"),
            message(&zoe, NEW_YEAR - DAY_MS, "hi"),
        ]);
        let stats = reduce([&first, &second], TOP_WORDS);
        let rows: Vec<(String, &str, u64)> = stats
            .per_member_per_day
            .iter()
            .map(|c| (c.day.label(), c.username.as_str(), c.messages))
            .collect();
        assert_eq!(
            rows,
            [
                ("2025-12-31".to_owned(), "zoe", 1),
                ("2026-01-01".to_owned(), "ada", 2),
                ("2026-01-01".to_owned(), "zoe", 1)
            ]
        );
        assert_eq!(stats.messages, 4);
    }

    #[test]
    fn reducing_nothing_is_empty() {
        let stats = reduce(std::iter::empty(), TOP_WORDS);
        assert_eq!(stats.messages, 0);
        assert!(stats.top_words.is_empty() && stats.per_member_per_day.is_empty());
    }

    #[test]
    fn a_partial_travels_as_json_and_back_unchanged() {
        let partial = Partial::of_messages(&[
            message(&user("ada", 7, 1), NEW_YEAR, "déjà vu, déjà"),
            message(&user("bob", 8, 2), NEW_YEAR, "vu"),
        ]);
        let json = serde_json::to_string(&partial).unwrap();
        assert_eq!(
            json,
            r#"{"messages":2,"words":{"déjà":2,"vu":2},"members":[{"user_id":"00000000-0000-0000-0000-000000000001","username":"ada","tag":"0007","day":20454,"messages":1},{"user_id":"00000000-0000-0000-0000-000000000002","username":"bob","tag":"0008","day":20454,"messages":1}]}"#
        );
        assert_eq!(serde_json::from_str::<Partial>(&json).unwrap(), partial);
    }

    #[test]
    fn counts_from_the_wire_saturate_instead_of_wrapping() {
        let mut sum = Partial {
            messages: u64::MAX,
            words: BTreeMap::from([("x".to_owned(), u64::MAX)]),
            members: BTreeMap::new(),
        };
        sum.add(&sum.clone());
        assert_eq!(sum.messages, u64::MAX);
        assert_eq!(sum.words["x"], u64::MAX);
    }
}
