//! Repository and replica-apply tests, on in-memory databases or files in a temporary directory.

use sqlx::Row;

use super::groups::NewGroup;
use super::messages::{self, NewMessage};
use super::users::{self, NewUser};
use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

fn user(name: &str, tag: u16, at: i64) -> NewUser {
    NewUser {
        id: UserId::random(),
        username: name.to_owned(),
        tag: UserTag::new(tag).expect("tag below 10,000"),
        password_hash: format!("hash-of-{name}"),
        created_at: UnixMillis(at),
    }
}

fn group_message(group: GroupId, sender: UserId, content: &str) -> NewMessage {
    NewMessage {
        id: MessageId::random(),
        chat: ChatId::Group(group),
        sender,
        receiver: None,
        content: content.to_owned(),
        created_at: UnixMillis(1_000),
        client_id: None,
        reply_to: None,
    }
}

/// Log entries numbered from `first` on, all under term 1.
fn entries(first: u64, mutations: Vec<Mutation>) -> Vec<LogEntry> {
    (first..)
        .zip(mutations)
        .map(|(epoch, mutation)| LogEntry {
            term: Term(1),
            epoch: Epoch(epoch),
            mutation,
        })
        .collect()
}

/// A database holding two users and a group created by the first, at epoch 3.
async fn with_group() -> (Database, NewUser, NewUser, GroupId) {
    let database = Database::open_in_memory().await.expect("open");
    let (alice, bob) = (user("alice", 1, 10), user("bob", 2, 11));
    let group = NewGroup {
        id: GroupId::random(),
        name: "rust".into(),
        creator: alice.id,
        created_at: UnixMillis(12),
    };
    let group_id = group.id;
    database
        .apply_entries(&entries(
            1,
            vec![
                Mutation::RegisterUser(alice.clone()),
                Mutation::RegisterUser(bob.clone()),
                Mutation::CreateGroup(group),
            ],
        ))
        .await
        .expect("apply");
    (database, alice, bob, group_id)
}

#[tokio::test]
async fn a_new_database_starts_at_epoch_zero_and_term_zero() {
    let database = Database::open_in_memory().await.expect("open");

    let position = database.position().await.expect("position");

    assert_eq!(position, (Term(0), Epoch(0)));
}

#[tokio::test]
async fn a_username_and_tag_pair_is_unique_but_a_name_may_repeat_with_another_tag() {
    let database = Database::open_in_memory().await.expect("open");
    let mut connection = database.pool().acquire().await.expect("connection");
    users::insert(&mut connection, &user("alice", 42, 1), Epoch(1))
        .await
        .expect("first alice#0042");

    let other_tag = users::insert(&mut connection, &user("alice", 43, 2), Epoch(2)).await;
    let same_tag = users::insert(&mut connection, &user("alice", 42, 3), Epoch(3)).await;

    assert!(other_tag.is_ok());
    assert!(same_tag.expect_err("duplicate").is_unique_violation());
    let taken = users::taken_tags(&mut connection, "alice")
        .await
        .expect("tags");
    assert_eq!(taken.len(), 2);
}

#[tokio::test]
async fn every_row_is_stamped_with_the_epoch_of_the_write_that_created_it() {
    let (database, alice, bob, group) = with_group().await;

    let mut connection = database.pool().acquire().await.expect("connection");
    let user_epochs: Vec<(String, i64)> =
        sqlx::query_as("SELECT username, epoch FROM users ORDER BY epoch")
            .fetch_all(&mut *connection)
            .await
            .expect("users");
    let secret_epoch: i64 = sqlx::query_scalar("SELECT epoch FROM user_secrets WHERE user_id = ?1")
        .bind(bob.id)
        .fetch_one(&mut *connection)
        .await
        .expect("secret");
    let group_epoch: i64 = sqlx::query_scalar("SELECT epoch FROM groups WHERE id = ?1")
        .bind(group)
        .fetch_one(&mut *connection)
        .await
        .expect("group");
    let membership_epoch: i64 =
        sqlx::query_scalar("SELECT epoch FROM memberships WHERE user_id = ?1")
            .bind(alice.id)
            .fetch_one(&mut *connection)
            .await
            .expect("membership");

    assert_eq!(user_epochs, vec![("alice".into(), 1), ("bob".into(), 2)]);
    assert_eq!((secret_epoch, group_epoch, membership_epoch), (2, 3, 3));
}

#[tokio::test]
async fn deleting_a_message_keeps_its_row_with_the_deleting_epoch_and_hides_it() {
    let (database, alice, _, group) = with_group().await;
    let message = group_message(group, alice.id, "hello");
    let message_id = message.id;
    database
        .apply_entries(&entries(
            4,
            vec![
                Mutation::PostMessage(message),
                Mutation::DeleteMessage {
                    message: message_id,
                    deleted_at: UnixMillis(2_000),
                },
            ],
        ))
        .await
        .expect("apply");

    let mut connection = database.pool().acquire().await.expect("connection");
    let row = sqlx::query("SELECT epoch, deleted_epoch, deleted_at FROM messages WHERE id = ?1")
        .bind(message_id)
        .fetch_one(&mut *connection)
        .await
        .expect("row kept");
    let page = messages::page(&mut connection, ChatId::Group(group), None, 50)
        .await
        .expect("page");

    assert_eq!(row.get::<i64, _>("epoch"), 4);
    assert_eq!(row.get::<Option<i64>, _>("deleted_epoch"), Some(5));
    assert_eq!(row.get::<Option<i64>, _>("deleted_at"), Some(2_000));
    assert!(page.is_empty());
}

#[tokio::test]
async fn a_page_is_the_newest_messages_below_before_returned_oldest_first() {
    let (database, alice, _, group) = with_group().await;
    let posts = (0..10)
        .map(|n| Mutation::PostMessage(group_message(group, alice.id, &format!("m{n}"))))
        .collect();
    database
        .apply_entries(&entries(4, posts))
        .await
        .expect("apply");
    let mut connection = database.pool().acquire().await.expect("connection");
    let chat = ChatId::Group(group);

    let newest = messages::page(&mut connection, chat, None, 3)
        .await
        .expect("page");
    let older = messages::page(&mut connection, chat, Some(newest[0].epoch), 3)
        .await
        .expect("page");
    let oldest = messages::page(&mut connection, chat, Some(Epoch(6)), 50)
        .await
        .expect("page");

    let contents = |page: &[Message]| page.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    assert_eq!(contents(&newest), ["m7", "m8", "m9"]);
    assert_eq!(contents(&older), ["m4", "m5", "m6"]);
    assert_eq!(contents(&oldest), ["m0", "m1"]);
    assert_eq!(newest[0].sender.username, "alice");
}

#[tokio::test]
async fn leaving_deletes_the_membership_and_rejoining_creates_a_new_one() {
    let (database, _, bob, group) = with_group().await;
    database
        .apply_entries(&entries(
            4,
            vec![
                Mutation::AddMember {
                    group,
                    user: bob.id,
                    joined_at: UnixMillis(20),
                },
                Mutation::RemoveMember {
                    group,
                    user: bob.id,
                },
                Mutation::AddMember {
                    group,
                    user: bob.id,
                    joined_at: UnixMillis(30),
                },
            ],
        ))
        .await
        .expect("apply");

    let mut connection = database.pool().acquire().await.expect("connection");
    let row = sqlx::query("SELECT joined_at, epoch FROM memberships WHERE user_id = ?1")
        .bind(bob.id)
        .fetch_all(&mut *connection)
        .await
        .expect("rows");

    assert_eq!(row.len(), 1);
    assert_eq!(row[0].get::<i64, _>("joined_at"), 30);
    assert_eq!(row[0].get::<i64, _>("epoch"), 6);
}

#[tokio::test]
async fn entries_apply_in_order_and_move_the_epoch_and_term() {
    let database = Database::open_in_memory().await.expect("open");
    let mut log = entries(
        1,
        vec![
            Mutation::RegisterUser(user("a", 1, 1)),
            Mutation::RegisterUser(user("b", 1, 2)),
        ],
    );
    log[1].term = Term(4);

    let epoch = database.apply_entries(&log).await.expect("apply");

    assert_eq!(epoch, Epoch(2));
    assert_eq!(
        database.position().await.expect("position"),
        (Term(4), Epoch(2))
    );
}

#[tokio::test]
async fn a_gap_is_refused_whole_and_names_the_missing_epoch() {
    let (database, alice, _, group) = with_group().await;
    let before = database.content_hash().await.expect("hash");
    let mut log = entries(
        4,
        vec![
            Mutation::PostMessage(group_message(group, alice.id, "four")),
            Mutation::PostMessage(group_message(group, alice.id, "five")),
            Mutation::PostMessage(group_message(group, alice.id, "seven")),
        ],
    );
    log[2].epoch = Epoch(7);

    let refused = database.apply_entries(&log).await;

    assert!(
        matches!(
            refused,
            Err(StorageError::Gap {
                have: 3,
                missing: 6
            })
        ),
        "{refused:?}"
    );
    assert_eq!(database.epoch().await.expect("epoch"), Epoch(3));
    assert_eq!(database.content_hash().await.expect("hash"), before);
}

#[tokio::test]
async fn entries_at_or_below_the_current_epoch_are_ignored() {
    let database = Database::open_in_memory().await.expect("open");
    let log = entries(
        1,
        vec![
            Mutation::RegisterUser(user("a", 1, 1)),
            Mutation::RegisterUser(user("b", 1, 2)),
        ],
    );
    database.apply_entries(&log[..1]).await.expect("first");
    let after_first = database.content_hash().await.expect("hash");

    let again = database.apply_entries(&log[..1]).await.expect("duplicate");
    let unchanged = database.content_hash().await.expect("hash");
    let overlapping = database.apply_entries(&log).await.expect("overlap");

    assert_eq!(again, Epoch(1));
    assert_eq!(unchanged, after_first);
    assert_eq!(overlapping, Epoch(2));
}

#[tokio::test]
async fn an_entry_that_does_not_fit_the_data_is_reported_as_divergence() {
    let database = Database::open_in_memory().await.expect("open");

    let refused = database
        .apply_entries(&entries(
            1,
            vec![Mutation::DeleteMessage {
                message: MessageId::random(),
                deleted_at: UnixMillis(1),
            }],
        ))
        .await;

    assert!(
        matches!(refused, Err(StorageError::Diverged { epoch: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(database.epoch().await.expect("epoch"), Epoch(0));
}

#[tokio::test]
async fn two_databases_fed_the_same_entries_have_the_same_content_hash() {
    let (first, alice, bob, group) = with_group().await;
    let second = Database::open_in_memory().await.expect("open");
    let replay = entries(
        1,
        vec![
            Mutation::RegisterUser(alice.clone()),
            Mutation::RegisterUser(bob.clone()),
            Mutation::CreateGroup(NewGroup {
                id: group,
                name: "rust".into(),
                creator: alice.id,
                created_at: UnixMillis(12),
            }),
        ],
    );

    second.apply_entries(&replay).await.expect("apply");
    let equal = (first.content_hash().await, second.content_hash().await);
    first
        .apply_entries(&entries(
            4,
            vec![Mutation::PostMessage(group_message(group, bob.id, "x"))],
        ))
        .await
        .expect("apply");
    let after = first.content_hash().await.expect("hash");

    assert_eq!(equal.0.expect("hash"), equal.1.expect("hash"));
    assert_ne!(after, second.content_hash().await.expect("hash"));
    assert_eq!(after.to_string().len(), 64);
}

#[tokio::test]
async fn a_term_can_grow_but_never_go_back() {
    let database = Database::open_in_memory().await.expect("open");

    database.set_term(Term(3)).await.expect("raise");
    let lower = database.set_term(Term(2)).await;

    assert!(matches!(
        lower,
        Err(StorageError::StaleTerm {
            stored: 3,
            requested: 2
        })
    ));
    assert_eq!(database.term().await.expect("term"), Term(3));
}

#[tokio::test]
async fn the_database_file_survives_close_and_reopen_with_its_epoch_and_data() {
    let directory = tempfile::tempdir().expect("tempdir");
    let alice = user("alice", 7, 1);
    let first = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("open");
    first
        .apply_entries(&entries(1, vec![Mutation::RegisterUser(alice.clone())]))
        .await
        .expect("apply");
    let hash = first.content_hash().await.expect("hash");
    first.close().await;

    let reopened = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("reopen");
    let mut connection = reopened.pool().acquire().await.expect("connection");
    let found = users::find_by_name(&mut connection, "alice", alice.tag)
        .await
        .expect("query");

    assert_eq!(reopened.epoch().await.expect("epoch"), Epoch(1));
    assert_eq!(reopened.content_hash().await.expect("hash"), hash);
    assert_eq!(found, Some(alice.user()));
    assert!(directory.path().join(DATABASE_FILE).exists());
}

#[tokio::test]
async fn a_file_database_uses_wal_full_sync_and_foreign_keys() {
    let directory = tempfile::tempdir().expect("tempdir");
    let database = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("open");
    let mut connection = database.pool().acquire().await.expect("connection");

    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *connection)
        .await
        .expect("journal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *connection)
        .await
        .expect("synchronous");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *connection)
        .await
        .expect("foreign keys");

    assert_eq!(journal, "wal");
    assert_eq!(synchronous, 2, "2 is FULL");
    assert_eq!(foreign_keys, 1);
}

#[tokio::test]
async fn a_membership_of_an_unknown_user_is_refused_by_the_foreign_key() {
    let (database, _, _, group) = with_group().await;

    let refused = database
        .apply_entries(&entries(
            4,
            vec![Mutation::AddMember {
                group,
                user: UserId::random(),
                joined_at: UnixMillis(1),
            }],
        ))
        .await;

    assert!(refused.is_err());
    assert_eq!(database.epoch().await.expect("epoch"), Epoch(3));
}

#[test]
fn a_log_entry_round_trips_through_json_and_never_prints_a_hash() {
    let entry = LogEntry {
        term: Term(2),
        epoch: Epoch(9),
        mutation: Mutation::RegisterUser(user("alice", 1, 5)),
    };

    let json = serde_json::to_string(&entry).expect("serialize");
    let back: LogEntry = serde_json::from_str(&json).expect("deserialize");

    assert_eq!(back, entry);
    assert!(json.contains(r#""kind":"register_user""#), "{json}");
    assert!(json.contains(r#""tag":"0001""#), "{json}");
    assert!(!format!("{entry:?}").contains("hash-of-alice"));
}

#[tokio::test]
async fn a_redelivered_entry_of_another_term_is_a_divergence_and_changes_nothing() {
    let (database, alice, _, group) = with_group().await;
    let before = database.content_hash().await.unwrap();
    // The same epoch again under the same term is a harmless re-delivery.
    let same = entries(
        3,
        vec![Mutation::CreateGroup(NewGroup {
            id: group,
            name: "rust".into(),
            creator: alice.id,
            created_at: UnixMillis(12),
        })],
    );
    assert_eq!(database.apply_entries(&same).await.unwrap(), Epoch(3));
    // Another writer's entry 3 (term 2) followed by its entry 4: this copy took another history.
    let other = vec![
        LogEntry {
            term: Term(2),
            epoch: Epoch(3),
            mutation: Mutation::PostMessage(group_message(group, alice.id, "theirs")),
        },
        LogEntry {
            term: Term(2),
            epoch: Epoch(4),
            mutation: Mutation::PostMessage(group_message(group, alice.id, "next")),
        },
    ];
    let error = database.apply_entries(&other).await.unwrap_err();
    assert!(
        matches!(error, StorageError::Diverged { epoch: 3, .. }),
        "{error}"
    );
    assert_eq!(database.epoch().await.unwrap(), Epoch(3));
    assert_eq!(database.content_hash().await.unwrap(), before);
}

#[tokio::test]
async fn a_log_read_from_an_epoch_beyond_what_sqlite_counts_is_empty_not_the_whole_log() {
    let (database, ..) = with_group().await;
    assert_eq!(database.log_since(Epoch(1), 10).await.unwrap().len(), 3);
    // Epochs in catch-up requests come from peers; cast with `as`, the largest wrapped negative.
    for from in [Epoch(u64::MAX), Epoch(1 << 63)] {
        let entries = database.log_since(from, 10).await.unwrap();
        assert!(entries.is_empty(), "from {from:?}: {entries:?}");
    }
}

#[tokio::test]
async fn a_promise_only_grows_and_survives_a_reopen_but_not_the_content_hash() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("open");
    let before = database.content_hash().await.unwrap();
    assert_eq!(database.promised().await.unwrap(), Term(0));
    assert_eq!(database.promise(Term(9)).await.unwrap(), Term(9));
    assert_eq!(database.promise(Term(4)).await.unwrap(), Term(9));
    // Promises are this node's own, not replicated data.
    assert_eq!(database.content_hash().await.unwrap(), before);
    database.close().await;
    let reopened = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("reopen");
    assert_eq!(reopened.promised().await.unwrap(), Term(9));
}

/// A database written by the schema before migration 0005 (with users, a group, group and direct
/// messages, one of them deleted) opens with today's schema: the direct-chat list and the search index
/// are filled from the rows that were there, and the old rows read as unedited, unquoted and without
/// reactions.
#[tokio::test]
async fn a_database_of_the_previous_schema_is_migrated_with_its_data() {
    let directory = tempfile::tempdir().expect("tempdir");
    let old_migrations = tempfile::tempdir().expect("tempdir");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.as_bytes().first().is_some_and(u8::is_ascii_digit) && name < "0005" {
            std::fs::copy(&path, old_migrations.path().join(name)).expect("copy");
        }
    }
    let (alice, bob, carol) = (UserId::random(), UserId::random(), UserId::random());
    let group = GroupId::random();
    let dm = ChatId::direct(alice, bob);
    {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(directory.path().join(DATABASE_FILE))
                    .create_if_missing(true),
            )
            .await
            .expect("open the old database");
        sqlx::migrate::Migrator::new(old_migrations.path())
            .await
            .expect("old migrator")
            .run(&pool)
            .await
            .expect("old schema");
        let mut statements = vec![
            format!(
                "INSERT INTO users (id, username, tag, created_at, epoch) VALUES
                 ('{alice}', 'alice', 1, 1, 1), ('{bob}', 'bob', 2, 2, 2), ('{carol}', 'carol', 3, 3, 3)"
            ),
            format!(
                "INSERT INTO groups (id, name, creator_id, created_at, epoch) VALUES ('{group}', 'old', '{alice}', 4, 4)"
            ),
            format!(
                "INSERT INTO memberships (group_id, user_id, joined_at, epoch) VALUES
                 ('{group}', '{carol}', 5, 5)"
            ),
        ];
        let rows = [
            (
                6,
                group.to_string(),
                carol,
                None,
                "Hello from the old days",
                false,
            ),
            (
                7,
                dm.to_string(),
                alice,
                Some(bob),
                "hello bob, privately",
                false,
            ),
            (8, dm.to_string(), bob, Some(alice), "hello, deleted", true),
        ];
        for (epoch, chat, sender, receiver, content, deleted) in rows {
            statements.push(format!(
                "INSERT INTO messages (id, chat_id, sender_id, receiver_id, content, created_at, epoch, deleted_at, deleted_epoch)
                 VALUES ('{}', '{chat}', '{sender}', {}, '{content}', {epoch}, {epoch}, {}, {})",
                MessageId::random(),
                receiver.map_or("NULL".to_owned(), |id| format!("'{id}'")),
                if deleted { "9" } else { "NULL" },
                if deleted { "9" } else { "NULL" },
            ));
        }
        statements.push("UPDATE system_state SET epoch = 9, term = 1".into());
        for statement in statements {
            sqlx::query(&statement)
                .execute(&pool)
                .await
                .expect("old rows");
        }
        pool.close().await;
    }

    let database = Database::open(directory.path(), DatabaseOptions::default())
        .await
        .expect("migrate");
    let mut connection = database.pool().acquire().await.expect("connection");

    assert_eq!(database.epoch().await.expect("epoch"), Epoch(9));
    let bobs = chats::list(&mut connection, bob)
        .await
        .expect("bob's chats");
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].chat, dm);
    assert!(matches!(&bobs[0].kind, ChatKind::Direct { user } if user.id == alice));
    assert_eq!(bobs[0].unread, 1, "the deleted message is not unread");
    let carols = chats::list(&mut connection, carol)
        .await
        .expect("carol's chats");
    assert_eq!(carols.len(), 1);
    assert_eq!(carols[0].chat, ChatId::Group(group));
    let found = messages::search(&mut connection, alice, "\"hello\"*", None, 10)
        .await
        .expect("search");
    let found: Vec<&str> = found.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        found,
        vec!["hello bob, privately"],
        "alice is not in the group"
    );
    let found = messages::search(&mut connection, carol, "\"old\"*", None, 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].edited_at,
            &found[0].reply_to,
            found[0].reactions.len()
        ),
        (None, &None, 0)
    );
    database
        .content_hash()
        .await
        .expect("hash of the migrated data");

    // New writes work on the migrated rows.
    let old = found[0].id;
    drop(connection);
    database
        .apply_entries(&entries(
            10,
            vec![
                Mutation::EditMessage {
                    message: old,
                    chat: ChatId::Group(group),
                    content: "Goodbye".into(),
                    edited_at: UnixMillis(10),
                },
                Mutation::SetReaction {
                    message: old,
                    chat: ChatId::Group(group),
                    user: alice,
                    emoji: "👍".into(),
                    on: true,
                    count: 1,
                    at: UnixMillis(11),
                },
            ],
        ))
        .await
        .expect("new writes");
    let mut connection = database.pool().acquire().await.expect("connection");
    let found = messages::search(&mut connection, carol, "\"goodbye\"*", None, 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 1);
}
