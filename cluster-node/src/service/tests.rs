//! Business rules of every operation through [`LocalService`], the group-committing writer, and replicas
//! rebuilt from the writer's log.

use std::collections::HashSet;

use futures::future::join_all;

use super::*;
use crate::storage::{
    ChatKind, Database, DatabaseOptions, GroupId, LogEntry, MessageId, Quote, Term, UserTag,
};

const PASSWORD: &str = "correct horse";

async fn writer() -> LocalService {
    let database = Database::open_in_memory().await.expect("open");
    LocalService::writer(database, ServiceOptions::for_tests())
}

async fn register(service: &LocalService, name: &str) -> User {
    service
        .register(
            RequestContext::anonymous(),
            Register {
                username: name.into(),
                password: PASSWORD.into(),
            },
        )
        .await
        .expect("register")
        .value
}

fn as_user(user: &User) -> RequestContext {
    RequestContext::user(user.id)
}

async fn create_group(service: &LocalService, creator: &User, name: &str) -> GroupWithMembers {
    service
        .create_group(as_user(creator), CreateGroup { name: name.into() })
        .await
        .expect("create group")
        .value
}

async fn add(service: &LocalService, by: &User, group: &GroupWithMembers, user: &User) {
    service
        .add_member(
            as_user(by),
            AddMember {
                group: group.group.id,
                username: user.username.clone(),
                tag: user.tag,
            },
        )
        .await
        .expect("add member");
}

fn post(group: &GroupWithMembers, content: &str) -> SendGroupMessage {
    SendGroupMessage {
        group: group.group.id,
        content: content.into(),
        client_id: None,
        reply_to: None,
    }
}

fn list(group: &GroupWithMembers) -> ListGroupMessages {
    ListGroupMessages {
        group: group.group.id,
        before: None,
        limit: None,
    }
}

fn direct(to: &User, content: &str) -> SendDirectMessage {
    SendDirectMessage {
        username: to.username.clone(),
        tag: to.tag,
        content: content.into(),
        client_id: None,
        reply_to: None,
    }
}

fn direct_history(with: &User) -> ListDirectMessages {
    ListDirectMessages {
        username: with.username.clone(),
        tag: with.tag,
        before: None,
        limit: None,
    }
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|message| message.content.as_str())
        .collect()
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::Forbidden(_)))
}

fn invalid<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::Invalid(_)))
}

// ─── users ──────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn registering_returns_the_user_with_a_tag_and_advances_the_epoch() {
    let service = writer().await;

    let answer = service
        .register(
            RequestContext::anonymous(),
            Register {
                username: "  alice ".into(),
                password: PASSWORD.into(),
            },
        )
        .await
        .expect("register");

    assert_eq!(answer.value.username, "alice");
    assert_eq!(answer.value.tag.to_string().len(), 4);
    assert_eq!(answer.epoch, Epoch(1));
    assert_eq!(service.database().epoch().await.expect("epoch"), Epoch(1));
}

#[tokio::test]
async fn registering_refuses_invalid_names_and_passwords() {
    let service = writer().await;
    let attempt = |username: &str, password: &str| {
        service.register(
            RequestContext::anonymous(),
            Register {
                username: username.into(),
                password: password.into(),
            },
        )
    };

    assert!(invalid(attempt("", PASSWORD).await));
    assert!(invalid(attempt(&"n".repeat(33), PASSWORD).await));
    assert!(invalid(attempt("bad#name", PASSWORD).await));
    assert!(invalid(attempt("alice", "short").await));
    assert!(invalid(attempt("alice", &"p".repeat(73)).await));
    assert_eq!(service.database().epoch().await.expect("epoch"), Epoch(0));
}

#[tokio::test]
async fn tags_are_distinct_for_one_username() {
    let service = writer().await;

    let users = join_all((0..40).map(|_| register(&service, "sam"))).await;

    let tags: HashSet<UserTag> = users.iter().map(|user| user.tag).collect();
    assert_eq!(tags.len(), 40);
}

#[tokio::test]
async fn registering_conflicts_when_all_ten_thousand_tags_of_a_name_are_taken() {
    let service = writer().await;
    let taken: Vec<LogEntry> = (0..UserTag::COUNT)
        .map(|number| LogEntry {
            term: Term(0),
            epoch: Epoch(u64::from(number) + 1),
            mutation: crate::storage::Mutation::RegisterUser(crate::storage::users::NewUser {
                id: crate::storage::UserId::random(),
                username: "popular".into(),
                tag: UserTag::new(number).expect("tag"),
                password_hash: "x".into(),
                created_at: crate::storage::UnixMillis(0),
            }),
        })
        .collect();
    service
        .database()
        .apply_entries(&taken)
        .await
        .expect("fill");

    let refused = service
        .register(
            RequestContext::anonymous(),
            Register {
                username: "popular".into(),
                password: PASSWORD.into(),
            },
        )
        .await;
    let other_name = register(&service, "rare").await;

    assert!(
        matches!(refused, Err(ServiceError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(other_name.username, "rare");
}

#[tokio::test]
async fn credentials_lookup_returns_a_hash_that_verifies_the_password() {
    let service = writer().await;
    let alice = register(&service, "alice").await;

    let credentials = service
        .lookup_credentials(
            RequestContext::anonymous(),
            LookupCredentials {
                username: "alice".into(),
                tag: alice.tag,
            },
        )
        .await
        .expect("lookup")
        .value;
    let unknown = service
        .lookup_credentials(
            RequestContext::anonymous(),
            LookupCredentials {
                username: "nobody".into(),
                tag: alice.tag,
            },
        )
        .await;

    assert_eq!(credentials.user, alice);
    assert!(
        password::verify(PASSWORD.into(), credentials.password_hash.clone())
            .await
            .expect("verify")
    );
    assert!(
        !password::verify("wrong password".into(), credentials.password_hash)
            .await
            .expect("verify")
    );
    assert_eq!(unknown.err(), Some(ServiceError::NotFound(Resource::User)));
}

#[tokio::test]
async fn a_user_is_found_by_name_and_tag_and_an_unknown_one_is_not() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let other_tag = UserTag::new((alice.tag.number() + 1) % UserTag::COUNT).expect("tag");
    let get = |username: &str, tag| {
        service.get_user(
            RequestContext::anonymous(),
            GetUser {
                username: username.into(),
                tag,
            },
        )
    };

    assert_eq!(
        get("alice", alice.tag).await.map(|answer| answer.value),
        Ok(alice.clone())
    );
    assert_eq!(
        get("alice", other_tag).await.err(),
        Some(ServiceError::NotFound(Resource::User))
    );
    assert_eq!(
        get("a/b", alice.tag).await.err(),
        Some(ServiceError::NotFound(Resource::User))
    );
}

#[tokio::test]
async fn get_me_needs_a_caller_that_exists() {
    let service = writer().await;
    let alice = register(&service, "alice").await;

    let me = service.get_me(as_user(&alice)).await;
    let nobody = service.get_me(RequestContext::anonymous()).await;
    let forged = service
        .get_me(RequestContext::user(crate::storage::UserId::random()))
        .await;

    assert_eq!(me.map(|answer| answer.value), Ok(alice));
    assert_eq!(nobody.err(), Some(ServiceError::Unauthenticated));
    assert_eq!(forged.err(), Some(ServiceError::Unauthenticated));
}

// ─── direct messages ────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_direct_message_is_seen_by_both_users_and_by_nobody_else() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let carol = register(&service, "carol").await;

    let sent = service
        .send_direct_message(as_user(&alice), direct(&bob, "hi bob"))
        .await
        .expect("send");
    let bob_sees = service
        .list_direct_messages(as_user(&bob), direct_history(&alice))
        .await
        .expect("list");
    let alice_sees = service
        .list_direct_messages(as_user(&alice), direct_history(&bob))
        .await
        .expect("list");
    let carol_sees = service
        .list_direct_messages(as_user(&carol), direct_history(&alice))
        .await
        .expect("list");

    assert_eq!(sent.value.sender, alice.to_ref());
    assert_eq!(sent.value.receiver, Some(bob.id));
    assert_eq!(
        sent.value.chat,
        crate::storage::ChatId::direct(bob.id, alice.id)
    );
    assert_eq!(sent.value.epoch, sent.epoch);
    assert_eq!(bob_sees.value, vec![sent.value.clone()]);
    assert_eq!(alice_sees.value, vec![sent.value]);
    assert!(carol_sees.value.is_empty());
}

#[tokio::test]
async fn a_direct_message_to_an_unknown_user_is_not_found() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let ghost = User {
        username: "ghost".into(),
        ..alice.clone()
    };

    let sent = service
        .send_direct_message(as_user(&alice), direct(&ghost, "anyone?"))
        .await;
    let listed = service
        .list_direct_messages(as_user(&alice), direct_history(&ghost))
        .await;

    assert_eq!(sent.err(), Some(ServiceError::NotFound(Resource::User)));
    assert_eq!(listed.err(), Some(ServiceError::NotFound(Resource::User)));
}

#[tokio::test]
async fn sending_or_listing_without_a_caller_is_unauthenticated() {
    let service = writer().await;
    let bob = register(&service, "bob").await;

    let sent = service
        .send_direct_message(RequestContext::anonymous(), direct(&bob, "hi"))
        .await;
    let forged = service
        .send_direct_message(
            RequestContext::user(crate::storage::UserId::random()),
            direct(&bob, "hi"),
        )
        .await;
    let listed = service
        .list_direct_messages(RequestContext::anonymous(), direct_history(&bob))
        .await;
    let groups = service.list_groups(RequestContext::anonymous()).await;

    assert_eq!(sent.err(), Some(ServiceError::Unauthenticated));
    assert_eq!(forged.err(), Some(ServiceError::Unauthenticated));
    assert_eq!(listed.err(), Some(ServiceError::Unauthenticated));
    assert_eq!(groups.err(), Some(ServiceError::Unauthenticated));
}

#[tokio::test]
async fn message_content_must_be_one_to_four_thousand_characters() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;

    let empty = service
        .send_direct_message(as_user(&alice), direct(&bob, ""))
        .await;
    let too_long = service
        .send_direct_message(as_user(&alice), direct(&bob, &"x".repeat(4001)))
        .await;
    let longest = service
        .send_direct_message(as_user(&alice), direct(&bob, &"x".repeat(4000)))
        .await;

    assert!(invalid(empty));
    assert!(invalid(too_long));
    assert!(longest.is_ok());
}

// ─── groups ─────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn creating_a_group_makes_the_creator_its_first_member() {
    let service = writer().await;
    let alice = register(&service, "alice").await;

    let group = create_group(&service, &alice, " Rust fans ").await;
    let fetched = service
        .get_group(
            as_user(&alice),
            GetGroup {
                group: group.group.id,
            },
        )
        .await
        .expect("get");
    let mine = service.list_groups(as_user(&alice)).await.expect("list");

    assert_eq!(group.group.name, "Rust fans");
    assert_eq!(group.group.creator, alice.id);
    assert_eq!(group.members, vec![alice]);
    assert_eq!(fetched.value, group);
    assert_eq!(mine.value, vec![group.group]);
}

#[tokio::test]
async fn creating_a_group_refuses_a_bad_name_and_an_anonymous_caller() {
    let service = writer().await;
    let alice = register(&service, "alice").await;

    let unnamed = service
        .create_group(as_user(&alice), CreateGroup { name: "  ".into() })
        .await;
    let anonymous = service
        .create_group(
            RequestContext::anonymous(),
            CreateGroup { name: "x".into() },
        )
        .await;

    assert!(invalid(unnamed));
    assert_eq!(anonymous.err(), Some(ServiceError::Unauthenticated));
}

#[tokio::test]
async fn an_added_member_sees_the_group_and_its_messages() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;

    let added = service
        .add_member(
            as_user(&alice),
            AddMember {
                group: group.group.id,
                username: "bob".into(),
                tag: bob.tag,
            },
        )
        .await
        .expect("add");
    service
        .send_group_message(as_user(&alice), post(&group, "welcome"))
        .await
        .expect("send");
    let bob_groups = service.list_groups(as_user(&bob)).await.expect("groups");
    let bob_reads = service
        .list_group_messages(as_user(&bob), list(&group))
        .await
        .expect("messages");
    let bob_posts = service
        .send_group_message(as_user(&bob), post(&group, "thanks"))
        .await;

    assert_eq!(added.value.members, vec![alice, bob]);
    assert_eq!(bob_groups.value, vec![group.group.clone()]);
    assert_eq!(contents(&bob_reads.value), ["welcome"]);
    assert!(bob_posts.is_ok());
}

#[tokio::test]
async fn a_non_member_cannot_read_post_or_add_members() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let mallory = register(&service, "mallory").await;
    let group = create_group(&service, &alice, "private").await;
    let outsider = as_user(&mallory);

    let get = service
        .get_group(
            outsider,
            GetGroup {
                group: group.group.id,
            },
        )
        .await;
    let read = service.list_group_messages(outsider, list(&group)).await;
    let write = service
        .send_group_message(outsider, post(&group, "let me in"))
        .await;
    let add = service
        .add_member(
            outsider,
            AddMember {
                group: group.group.id,
                username: "mallory".into(),
                tag: mallory.tag,
            },
        )
        .await;
    let leave = service
        .leave_group(
            outsider,
            LeaveGroup {
                group: group.group.id,
            },
        )
        .await;

    assert!(forbidden(get));
    assert!(forbidden(read));
    assert!(forbidden(write));
    assert!(forbidden(add));
    assert!(forbidden(leave));
    assert!(
        service
            .list_groups(outsider)
            .await
            .expect("groups")
            .value
            .is_empty()
    );
}

#[tokio::test]
async fn an_unknown_group_or_user_is_not_found() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let group = create_group(&service, &alice, "rust").await;
    let nowhere = crate::storage::GroupId::random();

    let get = service
        .get_group(as_user(&alice), GetGroup { group: nowhere })
        .await;
    let send = service
        .send_group_message(
            as_user(&alice),
            SendGroupMessage {
                group: nowhere,
                content: "hello?".into(),
                client_id: None,
                reply_to: None,
            },
        )
        .await;
    let add_unknown_user = service
        .add_member(
            as_user(&alice),
            AddMember {
                group: group.group.id,
                username: "ghost".into(),
                tag: alice.tag,
            },
        )
        .await;
    let add_to_unknown_group = service
        .add_member(
            as_user(&alice),
            AddMember {
                group: nowhere,
                username: "alice".into(),
                tag: alice.tag,
            },
        )
        .await;

    assert_eq!(get.err(), Some(ServiceError::NotFound(Resource::Group)));
    assert_eq!(send.err(), Some(ServiceError::NotFound(Resource::Group)));
    assert_eq!(
        add_unknown_user.err(),
        Some(ServiceError::NotFound(Resource::User))
    );
    assert_eq!(
        add_to_unknown_group.err(),
        Some(ServiceError::NotFound(Resource::Group))
    );
}

#[tokio::test]
async fn adding_an_existing_member_again_succeeds_without_a_write() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    add(&service, &alice, &group, &bob).await;
    let epoch = service.database().epoch().await.expect("epoch");

    let again = service
        .add_member(
            as_user(&alice),
            AddMember {
                group: group.group.id,
                username: "bob".into(),
                tag: bob.tag,
            },
        )
        .await
        .expect("add again");

    assert_eq!(again.value.members.len(), 2);
    assert_eq!(again.epoch, epoch);
    assert_eq!(service.database().epoch().await.expect("epoch"), epoch);
}

#[tokio::test]
async fn a_member_who_leaves_loses_access_and_can_be_added_back() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    add(&service, &alice, &group, &bob).await;

    let left = service
        .leave_group(
            as_user(&bob),
            LeaveGroup {
                group: group.group.id,
            },
        )
        .await;
    let read_after = service
        .list_group_messages(as_user(&bob), list(&group))
        .await;
    let members_after = service
        .get_group(
            as_user(&alice),
            GetGroup {
                group: group.group.id,
            },
        )
        .await
        .expect("get")
        .value
        .members;
    let leave_again = service
        .leave_group(
            as_user(&bob),
            LeaveGroup {
                group: group.group.id,
            },
        )
        .await;
    add(&service, &alice, &group, &bob).await;
    let read_back = service
        .list_group_messages(as_user(&bob), list(&group))
        .await;

    assert!(left.is_ok());
    assert!(forbidden(read_after));
    assert_eq!(members_after, vec![alice]);
    assert!(forbidden(leave_again));
    assert!(read_back.is_ok());
}

// ─── history paging ─────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn group_history_pages_backwards_by_epoch_oldest_first_and_caps_at_five_hundred() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let group = create_group(&service, &alice, "busy").await;
    for chunk in 0..6 {
        join_all((0..100).map(|n| {
            service.send_group_message(
                as_user(&alice),
                post(&group, &format!("{}", chunk * 100 + n)),
            )
        }))
        .await
        .into_iter()
        .for_each(|sent| {
            sent.expect("send");
        });
    }
    let page = |before, limit| {
        service.list_group_messages(
            as_user(&alice),
            ListGroupMessages {
                group: group.group.id,
                before,
                limit,
            },
        )
    };

    let first = page(None, None).await.expect("page").value;
    let second = page(Some(first[0].epoch), None).await.expect("page").value;
    let huge = page(None, Some(10_000)).await.expect("page").value;
    let zero = page(None, Some(0)).await;
    let before_everything = page(Some(first[0].epoch), Some(1))
        .await
        .expect("page")
        .value;

    assert_eq!(first.len(), 50);
    assert!(first.windows(2).all(|pair| pair[0].epoch < pair[1].epoch));
    assert!(second.windows(2).all(|pair| pair[0].epoch < pair[1].epoch));
    assert_eq!(
        second.last().map(|m| Epoch(m.epoch.0 + 1)),
        Some(first[0].epoch)
    );
    assert_eq!(huge.len(), 500);
    assert_eq!(huge.last(), first.last());
    assert!(invalid(zero));
    assert_eq!(before_everything, vec![second[49].clone()]);
}

#[tokio::test]
async fn direct_history_pages_like_group_history() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    for n in 0..5 {
        service
            .send_direct_message(as_user(&alice), direct(&bob, &format!("m{n}")))
            .await
            .expect("send");
    }

    let newest = service
        .list_direct_messages(
            as_user(&bob),
            ListDirectMessages {
                limit: Some(2),
                ..direct_history(&alice)
            },
        )
        .await
        .expect("list")
        .value;
    let older = service
        .list_direct_messages(
            as_user(&bob),
            ListDirectMessages {
                limit: Some(2),
                before: Some(newest[0].epoch),
                ..direct_history(&alice)
            },
        )
        .await
        .expect("list")
        .value;

    assert_eq!(contents(&newest), ["m3", "m4"]);
    assert_eq!(contents(&older), ["m1", "m2"]);
}

// ─── idempotent sends ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_retried_send_with_the_same_client_id_returns_the_first_message() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    let with_key = |content: &str| SendGroupMessage {
        client_id: Some("key-1".into()),
        ..post(&group, content)
    };

    let first = service
        .send_group_message(as_user(&alice), with_key("once"))
        .await
        .expect("first");
    let retry = service
        .send_group_message(as_user(&alice), with_key("once"))
        .await
        .expect("retry");
    let concurrent = join_all((0..5).map(|_| {
        service.send_group_message(
            as_user(&alice),
            SendGroupMessage {
                client_id: Some("key-2".into()),
                ..post(&group, "racing")
            },
        )
    }))
    .await;
    let history = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list")
        .value;
    let direct_retry = [0, 1].map(|_| SendDirectMessage {
        client_id: Some("dm-key".into()),
        ..direct(&bob, "hi")
    });
    let dm_first = service
        .send_direct_message(as_user(&alice), direct_retry[0].clone())
        .await
        .expect("dm");
    let dm_again = service
        .send_direct_message(as_user(&alice), direct_retry[1].clone())
        .await
        .expect("dm retry");

    assert_eq!(retry.value, first.value);
    assert_eq!(
        first.value.client_id.as_ref().map(|key| key.as_str()),
        Some("key-1")
    );
    let ids: HashSet<MessageId> = concurrent
        .into_iter()
        .map(|sent| sent.expect("send").value.id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(contents(&history), ["once", "racing"]);
    assert_eq!(dm_again.value, dm_first.value);
}

#[tokio::test]
async fn a_client_id_reused_in_another_chat_conflicts_and_a_malformed_one_is_invalid() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    service
        .send_group_message(
            as_user(&alice),
            SendGroupMessage {
                client_id: Some("k".into()),
                ..post(&group, "in the group")
            },
        )
        .await
        .expect("send");

    let elsewhere = service
        .send_direct_message(
            as_user(&alice),
            SendDirectMessage {
                client_id: Some("k".into()),
                ..direct(&bob, "to bob")
            },
        )
        .await;
    let malformed = service
        .send_group_message(
            as_user(&alice),
            SendGroupMessage {
                client_id: Some("has spaces".into()),
                ..post(&group, "x")
            },
        )
        .await;

    assert!(
        matches!(elsewhere, Err(ServiceError::Conflict(_))),
        "{elsewhere:?}"
    );
    assert!(invalid(malformed));
}

// ─── deletes ────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn only_its_sender_can_delete_a_message() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    add(&service, &alice, &group, &bob).await;
    let message = service
        .send_group_message(as_user(&alice), post(&group, "mine"))
        .await
        .expect("send")
        .value;
    let delete =
        |who: &User, id| service.delete_message(as_user(who), DeleteMessage { message: id });

    let by_bob = delete(&bob, message.id).await;
    let by_alice = delete(&alice, message.id).await;
    let again = delete(&alice, message.id).await;
    let unknown = delete(&alice, MessageId::random()).await;
    let history = service
        .list_group_messages(as_user(&bob), list(&group))
        .await
        .expect("list")
        .value;

    assert!(forbidden(by_bob));
    assert!(by_alice.is_ok());
    assert_eq!(again.err(), Some(ServiceError::NotFound(Resource::Message)));
    assert_eq!(
        unknown.err(),
        Some(ServiceError::NotFound(Resource::Message))
    );
    assert!(history.is_empty());
}

#[tokio::test]
async fn only_its_creator_can_delete_a_group_and_then_members_see_it_gone() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    add(&service, &alice, &group, &bob).await;
    let message = service
        .send_group_message(as_user(&bob), post(&group, "before the end"))
        .await
        .expect("send")
        .value;
    let id = group.group.id;

    let by_bob = service
        .delete_group(as_user(&bob), DeleteGroup { group: id })
        .await;
    let by_alice = service
        .delete_group(as_user(&alice), DeleteGroup { group: id })
        .await;
    let get = service
        .get_group(as_user(&bob), GetGroup { group: id })
        .await;
    let groups = service
        .list_groups(as_user(&bob))
        .await
        .expect("groups")
        .value;
    let read = service
        .list_group_messages(as_user(&bob), list(&group))
        .await;
    let write = service
        .send_group_message(as_user(&bob), post(&group, "hello?"))
        .await;
    let delete_message = service
        .delete_message(
            as_user(&bob),
            DeleteMessage {
                message: message.id,
            },
        )
        .await;
    let again = service
        .delete_group(as_user(&alice), DeleteGroup { group: id })
        .await;

    assert!(forbidden(by_bob));
    assert!(by_alice.is_ok());
    assert_eq!(get.err(), Some(ServiceError::NotFound(Resource::Group)));
    assert!(groups.is_empty());
    assert_eq!(read.err(), Some(ServiceError::NotFound(Resource::Group)));
    assert_eq!(write.err(), Some(ServiceError::NotFound(Resource::Group)));
    assert_eq!(
        delete_message.err(),
        Some(ServiceError::NotFound(Resource::Message))
    );
    assert_eq!(again.err(), Some(ServiceError::NotFound(Resource::Group)));
}

// ─── the writer ─────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn one_hundred_concurrent_sends_get_consecutive_epochs_in_fewer_transactions() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let group = create_group(&service, &alice, "load").await;
    let before = service.writer_counts().expect("writer");
    let start = service.database().epoch().await.expect("epoch");
    let caller = as_user(&alice);

    let sent = join_all((0..100).map(|n| {
        let service = service.clone();
        let message = post(&group, &format!("{n}"));
        tokio::spawn(async move { service.send_group_message(caller, message).await })
    }))
    .await;

    let mut epochs: Vec<u64> = sent
        .into_iter()
        .map(|joined| joined.expect("task").expect("send").epoch.0)
        .collect();
    epochs.sort_unstable();
    let after = service.writer_counts().expect("writer");
    assert_eq!(epochs, (start.0 + 1..=start.0 + 100).collect::<Vec<_>>());
    assert_eq!(after.writes - before.writes, 100);
    let transactions = after.transactions - before.transactions;
    assert!(
        transactions < 100,
        "{transactions} transactions for 100 writes"
    );
}

#[tokio::test]
async fn a_failing_write_in_a_batch_does_not_fail_its_neighbours() {
    let service = writer().await;
    let alice = register(&service, "alice").await;
    let mallory = register(&service, "mallory").await;
    let group = create_group(&service, &alice, "rust").await;

    let results = join_all((0..20).map(|n| {
        let sender = if n % 2 == 0 { &alice } else { &mallory };
        service.send_group_message(as_user(sender), post(&group, &format!("{n}")))
    }))
    .await;

    let (accepted, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(accepted.len(), 10);
    assert!(refused.into_iter().all(forbidden));
    let history = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list")
        .value;
    assert_eq!(history.len(), 10);
    assert!(history.iter().all(|message| message.sender.id == alice.id));
}

#[tokio::test]
async fn every_committed_write_is_published_as_a_log_entry_with_the_stored_term() {
    let service = writer().await;
    service.database().set_term(Term(3)).await.expect("term");
    let mut log = service.subscribe().expect("writer");

    let alice = register(&service, "alice").await;
    let group = create_group(&service, &alice, "rust").await;
    let refused = service
        .send_group_message(RequestContext::anonymous(), post(&group, "x"))
        .await;

    let first = log.recv().await.expect("entry");
    let second = log.recv().await.expect("entry");
    assert!(refused.is_err());
    assert_eq!((first.term, first.epoch), (Term(3), Epoch(1)));
    assert_eq!((second.term, second.epoch), (Term(3), Epoch(2)));
    assert!(matches!(
        first.mutation,
        crate::storage::Mutation::RegisterUser(_)
    ));
    assert!(log.try_recv().is_err(), "a refused write publishes nothing");
}

#[tokio::test]
async fn a_term_taken_between_batches_is_the_term_of_the_next_entries_and_nothing_is_written_twice()
{
    let service = writer().await;
    service.database().set_term(Term(3)).await.expect("term");
    let mut log = service.subscribe().expect("writer");
    let alice = register(&service, "alice").await;
    let group = create_group(&service, &alice, "rust").await;
    // The group's newest page is read, so the next message is planned from the recent window.
    service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list");
    let first = service
        .send_group_message(as_user(&alice), post(&group, "before"))
        .await
        .expect("send");

    // The data plane takes a term while the writer holds its position in memory: the writer's
    // next batch finds the stored position moved, rolls back and writes again from the stored one.
    service.database().set_term(Term(4)).await.expect("term");
    let second = service
        .send_group_message(as_user(&alice), post(&group, "after"))
        .await
        .expect("send");

    let mut entries = Vec::new();
    while let Ok(entry) = log.try_recv() {
        entries.push((entry.term, entry.epoch));
    }
    assert_eq!(
        entries,
        vec![
            (Term(3), Epoch(1)),
            (Term(3), Epoch(2)),
            (Term(3), first.epoch),
            (Term(4), second.epoch)
        ]
    );
    assert_eq!(second.epoch, Epoch(first.epoch.0 + 1));
    assert_eq!(
        service.database().position().await.expect("position"),
        (Term(4), second.epoch)
    );
    let history = service
        .list_group_messages(as_user(&alice), list(&group))
        .await
        .expect("list");
    assert_eq!(contents(&history.value), vec!["before", "after"]);
}

#[tokio::test]
async fn the_writer_continues_from_the_stored_epoch_after_a_restart() {
    let directory = tempfile::tempdir().expect("tempdir");
    let open = || Database::open(directory.path(), DatabaseOptions::default());
    let first = LocalService::writer(open().await.expect("open"), ServiceOptions::for_tests());
    let alice = register(&first, "alice").await;
    first.database().close().await;
    drop(first);

    let second = LocalService::writer(open().await.expect("reopen"), ServiceOptions::for_tests());
    let group = second
        .create_group(
            as_user(&alice),
            CreateGroup {
                name: "after".into(),
            },
        )
        .await
        .expect("create");

    assert_eq!(group.epoch, Epoch(2));
    assert_eq!(group.value.members, vec![alice]);
}

#[tokio::test]
async fn two_writers_with_the_same_seed_choose_the_same_ids_and_tags() {
    let seeded = || async {
        let database = Database::open_in_memory().await.expect("open");
        LocalService::writer(
            database,
            ServiceOptions {
                seed: Some(42),
                ..ServiceOptions::for_tests()
            },
        )
    };
    let (first, second) = (seeded().await, seeded().await);

    let (one, two) = (
        register(&first, "ann").await,
        register(&second, "ann").await,
    );

    assert_eq!((one.id, one.tag), (two.id, two.tag));
}

// ─── replicas ───────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_replica_refuses_writes_and_reads_it_is_not_fresh_enough_for() {
    let service = writer().await;
    let mut log = service.subscribe().expect("writer");
    let alice = register(&service, "alice").await;
    let replica_database = Database::open_in_memory().await.expect("open");
    replica_database
        .apply_entries(&[log.recv().await.expect("entry")])
        .await
        .expect("apply");
    let replica = LocalService::replica(replica_database);

    let write = replica
        .create_group(
            as_user(&alice).at(Epoch(1)),
            CreateGroup { name: "x".into() },
        )
        .await;
    let new_client = replica.get_me(as_user(&alice)).await;
    let ahead = replica.get_me(as_user(&alice).at(Epoch(2))).await;
    let fresh = replica.get_me(as_user(&alice).at(Epoch(1))).await;

    assert_eq!(write.err(), Some(ServiceError::ReadOnly));
    assert_eq!(
        new_client.err(),
        Some(ServiceError::Stale { wanted: 0, have: 1 })
    );
    assert_eq!(
        ahead.err(),
        Some(ServiceError::Stale { wanted: 2, have: 1 })
    );
    assert_eq!(
        fresh,
        Ok(Answer {
            epoch: Epoch(1),
            value: alice
        })
    );
    assert!(!replica.is_writer() && replica.subscribe().is_none());
}

#[tokio::test]
async fn a_replica_fed_the_writers_log_holds_identical_data() {
    let service = writer().await;
    let mut log = service.subscribe().expect("writer");
    let alice = register(&service, "alice").await;
    let bob = register(&service, "bob").await;
    let group = create_group(&service, &alice, "rust").await;
    add(&service, &alice, &group, &bob).await;
    let message = service
        .send_group_message(as_user(&bob), post(&group, "hi"))
        .await
        .expect("send")
        .value;
    service
        .send_direct_message(as_user(&alice), direct(&bob, "psst"))
        .await
        .expect("dm");
    service
        .delete_message(
            as_user(&bob),
            DeleteMessage {
                message: message.id,
            },
        )
        .await
        .expect("delete");
    service
        .leave_group(
            as_user(&bob),
            LeaveGroup {
                group: group.group.id,
            },
        )
        .await
        .expect("leave");
    service
        .delete_group(
            as_user(&alice),
            DeleteGroup {
                group: group.group.id,
            },
        )
        .await
        .expect("delete group");
    let mut entries = Vec::new();
    while let Ok(entry) = log.try_recv() {
        entries.push(entry);
    }
    let replica = Database::open_in_memory().await.expect("open");

    let epoch = replica.apply_entries(&entries).await.expect("apply");

    assert_eq!(entries.len(), 9);
    assert_eq!(epoch, service.database().epoch().await.expect("epoch"));
    assert_eq!(
        replica.content_hash().await.expect("hash"),
        service.database().content_hash().await.expect("hash")
    );
}

// ─── errors and wire formats ────────────────────────────────────────────────────────────────────────

#[test]
fn service_errors_map_to_the_http_statuses_of_the_api() {
    let statuses: Vec<u16> = [
        ServiceError::Invalid("x".into()),
        ServiceError::Unauthenticated,
        ServiceError::Forbidden("x".into()),
        ServiceError::NotFound(Resource::Group),
        ServiceError::Conflict("x".into()),
        ServiceError::Unavailable {
            retry_after: std::time::Duration::from_secs(1),
        },
        ServiceError::Timeout,
        ServiceError::ReadOnly,
        ServiceError::Stale { wanted: 2, have: 1 },
        ServiceError::Internal("x".into()),
    ]
    .iter()
    .map(ServiceError::status)
    .collect();

    assert_eq!(statuses, [400, 401, 403, 404, 409, 503, 503, 503, 503, 500]);
    assert!(ServiceError::ReadOnly.should_forward());
    assert!(!ServiceError::Timeout.should_forward());
    assert_eq!(
        ServiceError::NotFound(Resource::User).to_string(),
        "user not found"
    );
}

#[test]
fn requests_responses_and_errors_round_trip_through_json() {
    let request = ServiceRequest {
        caller: Some(crate::storage::UserId::random()),
        client_epoch: Epoch(12),
        operation: Operation::SendGroupMessage(SendGroupMessage {
            group: crate::storage::GroupId::random(),
            content: "hi".into(),
            client_id: Some("k".into()),
            reply_to: None,
        }),
    };
    let error = ServiceError::Stale { wanted: 3, have: 2 };

    let request_json = serde_json::to_string(&request).expect("serialize");
    let error_json = serde_json::to_string(&error).expect("serialize");

    assert_eq!(
        serde_json::from_str::<ServiceRequest>(&request_json).ok(),
        Some(request)
    );
    assert_eq!(
        serde_json::from_str::<ServiceError>(&error_json).ok(),
        Some(error)
    );
    assert!(
        request_json.contains(r#""op":"send_group_message""#),
        "{request_json}"
    );
    let register = format!(
        "{:?}",
        Operation::Register(Register {
            username: "a".into(),
            password: "hunter22".into()
        })
    );
    assert!(!register.contains("hunter22"));
}

// ─── replica determinism, property-based ────────────────────────────────────────────────────────────

mod determinism {
    use proptest::prelude::*;

    use super::*;

    /// One step of a random scenario among three users and the groups they create; indexes wrap around
    /// so every generated step names something.
    #[derive(Debug, Clone)]
    enum Step {
        Register,
        CreateGroup {
            by: usize,
        },
        AddMember {
            by: usize,
            group: usize,
            user: usize,
        },
        Leave {
            by: usize,
            group: usize,
        },
        SendGroup {
            by: usize,
            group: usize,
            key: Option<u8>,
        },
        SendDirect {
            by: usize,
            to: usize,
            key: Option<u8>,
        },
        DeleteMessage {
            by: usize,
            message: usize,
        },
        DeleteGroup {
            by: usize,
            group: usize,
        },
        Reply {
            by: usize,
            group: usize,
            message: usize,
        },
        Edit {
            by: usize,
            message: usize,
        },
        React {
            by: usize,
            message: usize,
            emoji: usize,
            on: bool,
        },
        MarkRead {
            by: usize,
            group: usize,
            epoch: u64,
        },
    }

    const EMOJIS: [&str; 3] = ["👍", "🎉", "❤️"];

    fn step() -> impl Strategy<Value = Step> {
        let index = || 0..4usize;
        prop_oneof![
            Just(Step::Register),
            index().prop_map(|by| Step::CreateGroup { by }),
            (index(), index(), index()).prop_map(|(by, group, user)| Step::AddMember {
                by,
                group,
                user
            }),
            (index(), index()).prop_map(|(by, group)| Step::Leave { by, group }),
            (index(), index(), proptest::option::of(0..3u8))
                .prop_map(|(by, group, key)| Step::SendGroup { by, group, key }),
            (index(), index(), proptest::option::of(0..3u8))
                .prop_map(|(by, to, key)| Step::SendDirect { by, to, key }),
            (index(), 0..8usize).prop_map(|(by, message)| Step::DeleteMessage { by, message }),
            (index(), index()).prop_map(|(by, group)| Step::DeleteGroup { by, group }),
            (index(), index(), 0..8usize).prop_map(|(by, group, message)| Step::Reply {
                by,
                group,
                message
            }),
            (index(), 0..8usize).prop_map(|(by, message)| Step::Edit { by, message }),
            (index(), 0..8usize, 0..3usize, any::<bool>()).prop_map(|(by, message, emoji, on)| {
                Step::React {
                    by,
                    message,
                    emoji,
                    on,
                }
            }),
            (index(), index(), 0..60u64).prop_map(|(by, group, epoch)| Step::MarkRead {
                by,
                group,
                epoch
            }),
        ]
    }

    /// The epochs of the live messages whose text has a word starting with `word`, by the index.
    async fn indexed(database: &Database, word: &str) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT rowid FROM messages_search WHERE messages_search MATCH ?1 ORDER BY rowid",
        )
        .bind(format!("\"{word}\"*"))
        .fetch_all(database.pool())
        .await
        .expect("search")
    }

    /// Every user's newest page of every group (two sizes, each asked twice so the second comes from
    /// the recent window once the first filled it) as `service` answers it, next to what the
    /// database alone answers: the same messages or the same error, and never a newer epoch than the
    /// database holds (`storage::recent`).
    async fn window_agrees_with_the_database(
        service: &LocalService,
        users: &[User],
        groups: &[GroupWithMembers],
        client_epoch: Epoch,
    ) {
        // Steps only ever name the first four of each (their indexes wrap at four).
        for group in groups.iter().take(4) {
            for user in users.iter().take(4) {
                for limit in [Some(3), None] {
                    let operation = Operation::ListGroupMessages(ListGroupMessages {
                        group: group.group.id,
                        before: None,
                        limit,
                    });
                    let database = service.database();
                    let mut transaction = database.pool().begin().await.expect("begin");
                    let (_, held) = crate::storage::system::position(&mut transaction)
                        .await
                        .expect("position");
                    let expected = reads::run(&mut transaction, Some(user.id), &operation).await;
                    transaction.commit().await.expect("commit");
                    for attempt in ["first", "second"] {
                        let answer = service
                            .execute(ServiceRequest {
                                caller: Some(user.id),
                                client_epoch,
                                operation: operation.clone(),
                            })
                            .await;
                        match (&answer, &expected) {
                            (Ok(answer), Ok(expected)) => {
                                assert_eq!(
                                    &answer.outcome, expected,
                                    "{attempt} read of {} by {}",
                                    group.group.id, user.username
                                );
                                assert!(answer.epoch <= held && answer.epoch >= client_epoch);
                            }
                            (Err(answer), Err(expected)) => assert_eq!(
                                answer.status(),
                                expected.status(),
                                "{attempt} read of {} by {}",
                                group.group.id,
                                user.username
                            ),
                            _ => panic!(
                                "{attempt} read of {} by {}: the service answered {answer:?}, the database {expected:?}",
                                group.group.id, user.username
                            ),
                        }
                    }
                }
            }
        }
    }

    /// Runs the steps concurrently in small waves (so batches mix successes and refusals), checking
    /// after each wave that the recent window answers as the database does, then rebuilds a replica
    /// from the published log and checks its window the same way.
    async fn run(steps: Vec<Step>) -> (Database, Database, usize) {
        let service = writer().await;
        let mut log = service.subscribe().expect("writer");
        let mut users = vec![register(&service, "u").await];
        let mut groups: Vec<GroupWithMembers> = Vec::new();
        let mut messages: Vec<MessageId> = Vec::new();
        for wave in steps.chunks(4) {
            let results = join_all(wave.iter().map(|step| {
                let service = service.clone();
                let pick = |index: usize| users[index % users.len()].clone();
                let group = |index: usize| groups.get(index % groups.len().max(1)).cloned();
                let operation = match step {
                    Step::Register => Operation::Register(Register {
                        username: "u".into(),
                        password: PASSWORD.into(),
                    }),
                    Step::CreateGroup { .. } => {
                        Operation::CreateGroup(CreateGroup { name: "g".into() })
                    }
                    Step::AddMember { group: g, user, .. } => match group(*g) {
                        Some(group) => Operation::AddMember(AddMember {
                            group: group.group.id,
                            username: pick(*user).username,
                            tag: pick(*user).tag,
                        }),
                        None => Operation::GetMe,
                    },
                    Step::Leave { group: g, .. } => match group(*g) {
                        Some(group) => Operation::LeaveGroup(LeaveGroup {
                            group: group.group.id,
                        }),
                        None => Operation::GetMe,
                    },
                    Step::SendGroup { group: g, key, .. } => match group(*g) {
                        Some(group) => Operation::SendGroupMessage(SendGroupMessage {
                            group: group.group.id,
                            content: "m".into(),
                            client_id: key.map(|key| format!("k{key}")),
                            reply_to: None,
                        }),
                        None => Operation::GetMe,
                    },
                    Step::SendDirect { to, key, .. } => {
                        Operation::SendDirectMessage(SendDirectMessage {
                            username: pick(*to).username,
                            tag: pick(*to).tag,
                            content: "d".into(),
                            client_id: key.map(|key| format!("k{key}")),
                            reply_to: None,
                        })
                    }
                    Step::DeleteMessage { message, .. } => {
                        match messages.get(*message % messages.len().max(1)) {
                            Some(id) => Operation::DeleteMessage(DeleteMessage { message: *id }),
                            None => Operation::GetMe,
                        }
                    }
                    Step::DeleteGroup { group: g, .. } => match group(*g) {
                        Some(group) => Operation::DeleteGroup(DeleteGroup {
                            group: group.group.id,
                        }),
                        None => Operation::GetMe,
                    },
                    Step::Reply {
                        group: g, message, ..
                    } => match (group(*g), messages.get(*message % messages.len().max(1))) {
                        (Some(group), Some(id)) => Operation::SendGroupMessage(SendGroupMessage {
                            group: group.group.id,
                            content: "r".into(),
                            client_id: None,
                            reply_to: Some(*id),
                        }),
                        _ => Operation::GetMe,
                    },
                    Step::Edit { message, .. } => {
                        match messages.get(*message % messages.len().max(1)) {
                            Some(id) => Operation::EditMessage(EditMessage {
                                message: *id,
                                content: format!("edited {message}"),
                            }),
                            None => Operation::GetMe,
                        }
                    }
                    Step::React {
                        message, emoji, on, ..
                    } => match messages.get(*message % messages.len().max(1)) {
                        Some(id) => Operation::SetReaction(SetReaction {
                            message: *id,
                            emoji: EMOJIS[*emoji].into(),
                            on: *on,
                        }),
                        None => Operation::GetMe,
                    },
                    Step::MarkRead {
                        group: g, epoch, ..
                    } => match group(*g) {
                        Some(group) => Operation::MarkRead(MarkRead {
                            chat: ChatRef::Group(group.group.id),
                            epoch: Epoch(*epoch),
                        }),
                        None => Operation::GetMe,
                    },
                };
                let by = match step {
                    Step::Register => 0,
                    Step::CreateGroup { by }
                    | Step::AddMember { by, .. }
                    | Step::Leave { by, .. }
                    | Step::SendGroup { by, .. }
                    | Step::SendDirect { by, .. }
                    | Step::DeleteMessage { by, .. }
                    | Step::DeleteGroup { by, .. }
                    | Step::Reply { by, .. }
                    | Step::Edit { by, .. }
                    | Step::React { by, .. }
                    | Step::MarkRead { by, .. } => *by,
                };
                let request = ServiceRequest {
                    caller: Some(pick(by).id),
                    client_epoch: Epoch(0),
                    operation,
                };
                async move { service.execute(request).await }
            }))
            .await;
            for result in results.into_iter().flatten() {
                match result.outcome {
                    Outcome::User(user) if !users.contains(&user) => users.push(user),
                    Outcome::Group(group)
                        if !groups.iter().any(|known| known.group.id == group.group.id) =>
                    {
                        groups.push(group)
                    }
                    Outcome::Message(message) if !messages.contains(&message.id) => {
                        messages.push(message.id)
                    }
                    _ => {}
                }
            }
            window_agrees_with_the_database(&service, &users, &groups, Epoch(0)).await;
        }
        let mut entries = Vec::new();
        while let Ok(entry) = log.try_recv() {
            entries.push(entry);
        }
        let replica = Database::open_in_memory().await.expect("open");
        // Delivered in two parts with an overlap, as a re-sending replication layer would.
        let middle = entries.len() / 2;
        replica
            .apply_entries(&entries[..middle])
            .await
            .expect("apply first half");
        let copy = LocalService::replica(replica.clone());
        if replica.epoch().await.expect("epoch") >= Epoch(1) {
            window_agrees_with_the_database(&copy, &users, &groups, Epoch(1)).await;
        }
        replica
            .apply_entries(&entries[middle.saturating_sub(1)..])
            .await
            .expect("apply second half");
        window_agrees_with_the_database(&copy, &users, &groups, Epoch(1)).await;
        (service.database().clone(), replica, entries.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn a_replica_rebuilt_from_the_log_matches_the_writer_after_any_sequence(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let (writer, replica, written) = runtime.block_on(run(steps));
            let (writer_hash, replica_hash, writer_epoch, replica_epoch) = runtime.block_on(async {
                (
                    writer.content_hash().await.expect("hash"),
                    replica.content_hash().await.expect("hash"),
                    writer.epoch().await.expect("epoch"),
                    replica.epoch().await.expect("epoch"),
                )
            });
            prop_assert_eq!(writer_epoch, Epoch(written as u64));
            prop_assert_eq!(replica_epoch, writer_epoch);
            prop_assert_eq!(replica_hash, writer_hash);
            // The search index is derived by triggers, outside the hash: it must agree too.
            for word in ["m", "d", "r", "edited"] {
                let (on_writer, on_replica) = runtime.block_on(async {
                    (indexed(&writer, word).await, indexed(&replica, word).await)
                });
                prop_assert_eq!(on_writer, on_replica, "index of {:?}", word);
            }
        }
    }
}

// ─── measurement (not a pass/fail test) ─────────────────────────────────────────────────────────────

/// Prints write throughput on a real file (WAL, `synchronous = FULL`) with and without group commit.
/// Run with `cargo test -p cluster-node --release --lib group_commit_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run it by hand"]
async fn group_commit_throughput() {
    for max_batch in [1, 256] {
        let directory = tempfile::tempdir().expect("tempdir");
        let database = Database::open(directory.path(), DatabaseOptions::default())
            .await
            .expect("open");
        let service = LocalService::writer(
            database,
            ServiceOptions {
                max_batch,
                ..ServiceOptions::for_tests()
            },
        );
        let alice = register(&service, "alice").await;
        let group = create_group(&service, &alice, "bench").await;
        let caller = as_user(&alice);
        let before = service.writer_counts().expect("writer");
        let writes = 2_000;

        let started = std::time::Instant::now();
        let sent = join_all((0..writes).map(|n| {
            let service = service.clone();
            let message = post(&group, &format!("message {n}"));
            tokio::spawn(async move { service.send_group_message(caller, message).await })
        }))
        .await;
        let elapsed = started.elapsed();

        assert!(sent.into_iter().all(|joined| matches!(joined, Ok(Ok(_)))));
        let after = service.writer_counts().expect("writer");
        eprintln!(
            "max_batch {max_batch:>3}: {writes} concurrent sends in {:.2} s = {:.0} writes/s, {} transactions",
            elapsed.as_secs_f64(),
            f64::from(writes) / elapsed.as_secs_f64(),
            after.transactions - before.transactions
        );
    }
}

#[tokio::test]
async fn a_retired_writer_commits_nothing_more_even_through_clones_held_elsewhere() {
    let service = writer().await;
    let ada = register(&service, "ada").await;
    let group = create_group(&service, &ada, "crowd").await;
    let epoch = service.database().epoch().await.unwrap();
    // A clone kept by an in-flight request, as the data plane's answering tasks hold one.
    let held = service.clone();
    service.retire().await;
    let result = held
        .send_group_message(as_user(&ada), post(&group, "late"))
        .await;
    assert!(
        matches!(result, Err(ServiceError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(service.database().epoch().await.unwrap(), epoch);
}

mod conversations;
