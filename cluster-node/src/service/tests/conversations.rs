//! Edits, replies, reactions, read markers, the chat list and search through [`LocalService`].

use super::*;

async fn alice_bob_and_a_group(service: &LocalService) -> (User, User, GroupWithMembers) {
    let alice = register(service, "alice").await;
    let bob = register(service, "bob").await;
    let group = create_group(service, &alice, "rust").await;
    add(service, &alice, &group, &bob).await;
    (alice, bob, group)
}

async fn say(service: &LocalService, by: &User, group: &GroupWithMembers, text: &str) -> Message {
    service
        .send_group_message(as_user(by), post(group, text))
        .await
        .expect("send")
        .value
}

fn react(message: &Message, emoji: &str, on: bool) -> SetReaction {
    SetReaction {
        message: message.id,
        emoji: emoji.into(),
        on,
    }
}

fn not_found<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::NotFound(_)))
}

// ─── edits ──────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn only_the_sender_edits_a_live_message_and_everyone_reads_the_new_text() {
    let service = writer().await;
    let (alice, bob, group) = alice_bob_and_a_group(&service).await;
    let message = say(&service, &alice, &group, "helo").await;

    let by_bob = service
        .edit_message(
            as_user(&bob),
            EditMessage {
                message: message.id,
                content: "hacked".into(),
            },
        )
        .await;
    let empty = service
        .edit_message(
            as_user(&alice),
            EditMessage {
                message: message.id,
                content: "  ".into(),
            },
        )
        .await;
    let edited = service
        .edit_message(
            as_user(&alice),
            EditMessage {
                message: message.id,
                content: "hello".into(),
            },
        )
        .await
        .expect("edit");
    let same_again = service
        .edit_message(
            as_user(&alice),
            EditMessage {
                message: message.id,
                content: "hello".into(),
            },
        )
        .await
        .expect("edit again");
    let history = service
        .list_group_messages(as_user(&bob), list(&group))
        .await
        .expect("list")
        .value;

    assert!(forbidden(by_bob));
    assert!(invalid(empty));
    assert_eq!(edited.value.content, "hello");
    assert!(edited.value.edited_at.is_some());
    assert_eq!(
        edited.value.epoch, message.epoch,
        "an edit keeps the message's place"
    );
    assert_eq!(
        same_again.epoch, edited.epoch,
        "the same text again writes nothing"
    );
    assert_eq!(contents(&history), vec!["hello"]);
    assert_eq!(history[0].edited_at, edited.value.edited_at);

    service
        .delete_message(
            as_user(&alice),
            DeleteMessage {
                message: message.id,
            },
        )
        .await
        .expect("delete");
    let after_deletion = service
        .edit_message(
            as_user(&alice),
            EditMessage {
                message: message.id,
                content: "back".into(),
            },
        )
        .await;
    assert!(not_found(after_deletion));
}

// ─── replies ────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_reply_quotes_a_live_message_of_its_own_chat_until_that_one_is_deleted() {
    let service = writer().await;
    let (alice, bob, group) = alice_bob_and_a_group(&service).await;
    let other = create_group(&service, &alice, "elsewhere").await;
    let long = "x".repeat(150);
    let original = say(&service, &alice, &group, &long).await;
    let elsewhere = say(&service, &alice, &other, "over there").await;

    let reply = service
        .send_group_message(
            as_user(&bob),
            SendGroupMessage {
                reply_to: Some(original.id),
                ..post(&group, "agreed")
            },
        )
        .await
        .expect("reply")
        .value;
    let across_chats = service
        .send_group_message(
            as_user(&alice),
            SendGroupMessage {
                reply_to: Some(elsewhere.id),
                ..post(&group, "wrong chat")
            },
        )
        .await;
    let to_nothing = service
        .send_group_message(
            as_user(&alice),
            SendGroupMessage {
                reply_to: Some(MessageId::random()),
                ..post(&group, "to nothing")
            },
        )
        .await;
    let to_a_direct_chat = service
        .send_direct_message(
            as_user(&bob),
            SendDirectMessage {
                reply_to: Some(original.id),
                ..direct(&alice, "dm")
            },
        )
        .await;

    let quote = reply.reply_to.clone().expect("a quote");
    assert_eq!(quote.id, original.id);
    assert_eq!(quote.sender.id, alice.id);
    assert_eq!(quote.excerpt, "x".repeat(Quote::EXCERPT_CHARS));
    assert!(invalid(across_chats));
    assert!(invalid(to_nothing));
    assert!(invalid(to_a_direct_chat));
    let listed = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list")
        .value;
    assert_eq!(listed.last().and_then(|m| m.reply_to.clone()), Some(quote));

    service
        .delete_message(
            as_user(&alice),
            DeleteMessage {
                message: original.id,
            },
        )
        .await
        .expect("delete");
    let listed = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list")
        .value;
    assert_eq!(contents(&listed), vec!["agreed"]);
    assert_eq!(
        listed[0].reply_to, None,
        "the quote of a deleted message is gone"
    );
}

// ─── reactions ──────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn reactions_are_counted_per_emoji_idempotent_and_say_whether_they_are_mine() {
    let service = writer().await;
    let (alice, bob, group) = alice_bob_and_a_group(&service).await;
    let carol = register(&service, "carol").await;
    let message = say(&service, &alice, &group, "ship it").await;

    let first = service
        .set_reaction(as_user(&alice), react(&message, "👍", true))
        .await
        .expect("react");
    let repeated = service
        .set_reaction(as_user(&alice), react(&message, "👍", true))
        .await
        .expect("react again");
    service
        .set_reaction(as_user(&bob), react(&message, "👍", true))
        .await
        .expect("bob reacts");
    // "❤" without its variation selector is the same reaction as "❤️".
    service
        .set_reaction(as_user(&bob), react(&message, "\u{2764}", true))
        .await
        .expect("heart");
    let bobs_view = service
        .set_reaction(as_user(&bob), react(&message, "\u{2764}\u{fe0f}", true))
        .await
        .expect("heart again")
        .value;
    let not_an_emoji = service
        .set_reaction(as_user(&bob), react(&message, "ok", true))
        .await;
    let outsider = service
        .set_reaction(as_user(&carol), react(&message, "👍", true))
        .await;

    assert_eq!(
        repeated.epoch, first.epoch,
        "a repeated reaction writes nothing"
    );
    let summary = |message: &Message| -> Vec<(String, u32, bool)> {
        message
            .reactions
            .iter()
            .map(|reaction| (reaction.emoji.clone(), reaction.count, reaction.me))
            .collect()
    };
    assert_eq!(
        summary(&bobs_view),
        vec![("👍".into(), 2, true), ("\u{2764}\u{fe0f}".into(), 1, true)]
    );
    assert!(invalid(not_an_emoji));
    assert!(
        not_found(outsider),
        "outsiders cannot tell the message exists"
    );

    let removed = service
        .set_reaction(as_user(&alice), react(&message, "👍", false))
        .await
        .expect("unreact")
        .value;
    let removed_again = service
        .set_reaction(as_user(&alice), react(&message, "👍", false))
        .await;
    let alices_list = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list")
        .value;
    assert_eq!(
        summary(&removed),
        vec![
            ("👍".into(), 1, false),
            ("\u{2764}\u{fe0f}".into(), 1, false)
        ]
    );
    assert!(
        removed_again.is_ok(),
        "taking off what is not there is done already"
    );
    assert_eq!(summary(&alices_list[0]), summary(&removed));
}

// ─── the chat list and read markers ─────────────────────────────────────────────────────────────────

fn unread_of(chats: &[ChatSummary], chat: ChatId) -> Option<(u64, Epoch)> {
    chats
        .iter()
        .find(|summary| summary.chat == chat)
        .map(|summary| (summary.unread, summary.read_epoch))
}

#[tokio::test]
async fn the_chat_list_holds_groups_and_direct_chats_by_activity_with_unread_counts() {
    let service = writer().await;
    let (alice, bob, group) = alice_bob_and_a_group(&service).await;
    let quiet = create_group(&service, &bob, "quiet").await;
    say(&service, &alice, &group, "one").await;
    let two = say(&service, &alice, &group, "two").await;
    say(&service, &bob, &group, "mine do not count").await;
    let dm = service
        .send_direct_message(as_user(&alice), direct(&bob, "psst"))
        .await
        .expect("dm")
        .value;

    let chats = service
        .list_chats(as_user(&bob))
        .await
        .expect("chats")
        .value;

    let order: Vec<ChatId> = chats.iter().map(|summary| summary.chat).collect();
    assert_eq!(
        order,
        vec![
            dm.chat,
            ChatId::Group(group.group.id),
            ChatId::Group(quiet.group.id)
        ]
    );
    assert_eq!(
        chats[0].kind,
        ChatKind::Direct {
            user: alice.to_ref()
        }
    );
    assert_eq!(chats[0].last_message.as_ref().map(|m| m.id), Some(dm.id));
    assert_eq!(unread_of(&chats, dm.chat), Some((1, Epoch(0))));
    assert_eq!(
        unread_of(&chats, ChatId::Group(group.group.id)),
        Some((2, Epoch(0)))
    );
    assert_eq!(
        unread_of(&chats, ChatId::Group(quiet.group.id)),
        Some((0, Epoch(0)))
    );
    assert_eq!(chats[2].last_message, None);

    // Reading up to "two" clears the group; a marker never moves back, nor past the last message.
    let marked = service
        .mark_read(
            as_user(&bob),
            MarkRead {
                chat: ChatRef::Group(group.group.id),
                epoch: two.epoch,
            },
        )
        .await
        .expect("mark");
    let backwards = service
        .mark_read(
            as_user(&bob),
            MarkRead {
                chat: ChatRef::Group(group.group.id),
                epoch: Epoch(1),
            },
        )
        .await
        .expect("mark back");
    let beyond = service
        .mark_read(
            as_user(&bob),
            MarkRead {
                chat: ChatRef::User {
                    username: alice.username.clone(),
                    tag: alice.tag,
                },
                epoch: Epoch(u64::MAX),
            },
        )
        .await
        .expect("mark dm");
    let chats = service
        .list_chats(as_user(&bob))
        .await
        .expect("chats")
        .value;

    assert_eq!(marked.value, (ChatId::Group(group.group.id), two.epoch));
    assert_eq!(backwards.value.1, two.epoch);
    assert_eq!(backwards.epoch, marked.epoch, "moving back writes nothing");
    assert_eq!(beyond.value, (dm.chat, dm.epoch));
    assert_eq!(
        unread_of(&chats, ChatId::Group(group.group.id)),
        Some((0, two.epoch))
    );
    assert_eq!(unread_of(&chats, dm.chat), Some((0, dm.epoch)));

    // Markers are per user: alice's list is her own.
    let alices = service
        .list_chats(as_user(&alice))
        .await
        .expect("chats")
        .value;
    assert_eq!(
        unread_of(&alices, ChatId::Group(group.group.id)),
        Some((1, Epoch(0)))
    );
    assert_eq!(unread_of(&alices, ChatId::Group(quiet.group.id)), None);

    // Not a member: 403; no such group: 404.
    let carol = register(&service, "carol").await;
    let outsider = service
        .mark_read(
            as_user(&carol),
            MarkRead {
                chat: ChatRef::Group(group.group.id),
                epoch: two.epoch,
            },
        )
        .await;
    let nowhere = service
        .mark_read(
            as_user(&carol),
            MarkRead {
                chat: ChatRef::Group(GroupId::random()),
                epoch: two.epoch,
            },
        )
        .await;
    assert!(forbidden(outsider));
    assert!(not_found(nowhere));
}

// ─── search ─────────────────────────────────────────────────────────────────────────────────────────

async fn search(
    service: &LocalService,
    by: &User,
    query: &str,
) -> Result<Vec<String>, ServiceError> {
    service
        .search(
            as_user(by),
            Search {
                query: query.into(),
                before: None,
                limit: None,
            },
        )
        .await
        .map(|answer| answer.value.into_iter().map(|m| m.content).collect())
}

#[tokio::test]
async fn search_finds_word_prefixes_in_the_callers_chats_only_newest_first() {
    let service = writer().await;
    let (alice, bob, group) = alice_bob_and_a_group(&service).await;
    let carol = register(&service, "carol").await;
    let secret = create_group(&service, &carol, "secret").await;
    say(&service, &alice, &group, "Hello, world").await;
    let typo = say(&service, &bob, &group, "helo there").await;
    say(
        &service,
        &carol,
        &secret,
        "hello from a group alice is not in",
    )
    .await;
    service
        .send_direct_message(as_user(&bob), direct(&alice, "Café tomorrow? hello"))
        .await
        .expect("dm");
    let gone = say(&service, &alice, &group, "hello, soon deleted").await;
    service
        .delete_message(as_user(&alice), DeleteMessage { message: gone.id })
        .await
        .expect("delete");

    assert_eq!(
        search(&service, &alice, "hel").await.expect("search"),
        vec!["Café tomorrow? hello", "helo there", "Hello, world"]
    );
    assert_eq!(
        search(&service, &alice, "hello wor").await.expect("search"),
        vec!["Hello, world"]
    );
    assert_eq!(
        search(&service, &alice, "cafe").await.expect("search"),
        vec!["Café tomorrow? hello"],
        "diacritics are folded"
    );
    assert_eq!(
        search(&service, &carol, "hello").await.expect("search"),
        vec!["hello from a group alice is not in"]
    );
    assert!(invalid(search(&service, &alice, " ,, ").await));

    // An edit is searched by its new text.
    service
        .edit_message(
            as_user(&bob),
            EditMessage {
                message: typo.id,
                content: "goodbye there".into(),
            },
        )
        .await
        .expect("edit");
    assert_eq!(
        search(&service, &alice, "helo").await.expect("search"),
        Vec::<String>::new()
    );
    assert_eq!(
        search(&service, &alice, "goodb").await.expect("search"),
        vec!["goodbye there"]
    );

    // Pages go back with `before`.
    let page = service
        .search(
            as_user(&alice),
            Search {
                query: "hel".into(),
                before: None,
                limit: Some(1),
            },
        )
        .await
        .expect("page")
        .value;
    let next = service
        .search(
            as_user(&alice),
            Search {
                query: "hel".into(),
                before: Some(page[0].epoch),
                limit: Some(5),
            },
        )
        .await
        .expect("next page")
        .value;
    assert_eq!(contents(&page), vec!["Café tomorrow? hello"]);
    assert_eq!(contents(&next), vec!["Hello, world"]);

    // Leaving a group takes its messages out of one's results.
    service
        .leave_group(
            as_user(&alice),
            LeaveGroup {
                group: group.group.id,
            },
        )
        .await
        .expect("leave");
    assert_eq!(
        search(&service, &alice, "hel").await.expect("search"),
        vec!["Café tomorrow? hello"]
    );
}
