//! Ephemeral groups: groups whose messages are never written anywhere. The writer holds them in memory
//! (this state machine), gives each message the next number of its group's sequence (one total order
//! for every member, as a single sequencer does), and hands out events that the data plane carries
//! down the tree to the members' input nodes. A member who joins gets the messages still held (the
//! last [`WINDOW`]). A group ends when its last member leaves, when every member has been offline for
//! [`GRACE`], and with the writer: a new writer starts with none, and every node tells its streams.
//!
//! Pure: the caller gives the time and who is online; nothing here touches a disk.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::storage::{GroupId, MessageId, UnixMillis, UserId, UserRef};

use super::error::{Resource, ServiceError};
use super::validate::{Content, GroupName};

/// Messages each group keeps for members who join later…
pub const WINDOW: usize = 200;
/// …and at most this many bytes of their text, so that the writer's memory for ephemeral groups is
/// bounded by `MAX_GROUPS × WINDOW_BYTES` (256 MiB) whatever members post.
pub const WINDOW_BYTES: usize = 256 * 1024;
/// A member offline for this long is dropped (and a group without members ends).
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(60);
/// Groups one writer holds at most (memory is the only bound ephemeral data has).
pub const MAX_GROUPS: usize = 1_000;

/// A message of an ephemeral group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralMessage {
    pub id: MessageId,
    pub group: GroupId,
    /// Its place in the group's one order: 1, 2, 3… without gaps.
    pub seq: u64,
    pub sender: UserRef,
    pub content: String,
    pub created_at: UnixMillis,
}

/// An ephemeral group as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralGroupView {
    pub id: GroupId,
    pub name: String,
    pub creator: UserId,
    pub created_at: UnixMillis,
    pub members: Vec<UserRef>,
    /// The messages still held, oldest first.
    pub messages: Vec<EphemeralMessage>,
}

/// What a member asks of the writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum EphemeralCommand {
    Create {
        name: String,
    },
    /// Adds `user` (resolved from `name#tag` by the asking input node).
    Add {
        group: GroupId,
        user: UserRef,
    },
    Leave {
        group: GroupId,
    },
    Post {
        group: GroupId,
        content: String,
    },
    Get {
        group: GroupId,
    },
}

/// A command with who asks (the input node knows the session's name and tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EphemeralRequest {
    pub caller: UserRef,
    pub command: EphemeralCommand,
}

/// The writer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EphemeralAnswer {
    Group(EphemeralGroupView),
    Message(EphemeralMessage),
    Left,
}

/// Why a group ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its last member left or stayed offline past the grace period.
    Empty,
    /// The writer that held it changed: ephemeral groups do not survive it.
    WriterChanged,
}

/// What members' streams are told, carried down the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EphemeralEvent {
    Message {
        members: Vec<UserId>,
        message: EphemeralMessage,
    },
    /// The members changed (created, someone joined or left): `left` is told too.
    Members {
        group: GroupId,
        name: String,
        members: Vec<UserRef>,
        left: Option<UserId>,
    },
    Ended {
        group: GroupId,
        members: Vec<UserId>,
        reason: EndReason,
    },
    /// The writer changed under this node: every ephemeral group it knew of is gone. Made by each
    /// node for its own streams, never sent.
    WriterChanged,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    creator: UserId,
    created_at: UnixMillis,
    members: BTreeMap<UserId, Member>,
    next_seq: u64,
    recent: VecDeque<EphemeralMessage>,
    /// The bytes of text in `recent`.
    recent_bytes: usize,
}

#[derive(Debug, Clone)]
struct Member {
    user: UserRef,
    /// When the writer last saw the member offline without a break (`None`: online, or not yet seen).
    offline_since: Option<UnixMillis>,
}

impl Group {
    fn view(&self, id: GroupId) -> EphemeralGroupView {
        EphemeralGroupView {
            id,
            name: self.name.clone(),
            creator: self.creator,
            created_at: self.created_at,
            members: self
                .members
                .values()
                .map(|member| member.user.clone())
                .collect(),
            messages: self.recent.iter().cloned().collect(),
        }
    }

    fn member_ids(&self) -> Vec<UserId> {
        self.members.keys().copied().collect()
    }

    fn members_event(&self, id: GroupId, left: Option<UserId>) -> EphemeralEvent {
        EphemeralEvent::Members {
            group: id,
            name: self.name.clone(),
            members: self
                .members
                .values()
                .map(|member| member.user.clone())
                .collect(),
            left,
        }
    }
}

/// Every ephemeral group one writer holds.
#[derive(Debug, Default)]
pub struct EphemeralGroups {
    groups: BTreeMap<GroupId, Group>,
}

impl EphemeralGroups {
    /// No group is held (every one has ended).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Runs `request` at `now`; `fresh` makes new ids. Answers and the events to send.
    pub fn apply(
        &mut self,
        request: EphemeralRequest,
        now: UnixMillis,
        fresh: &mut impl FnMut() -> uuid::Uuid,
    ) -> Result<(EphemeralAnswer, Vec<EphemeralEvent>), ServiceError> {
        let caller = request.caller;
        match request.command {
            EphemeralCommand::Create { name } => {
                let name = GroupName::parse(&name)?.into_string();
                if self.groups.len() >= MAX_GROUPS {
                    return Err(ServiceError::Unavailable {
                        retry_after: std::time::Duration::from_secs(5),
                    });
                }
                let id = GroupId(fresh());
                let group = Group {
                    name,
                    creator: caller.id,
                    created_at: now,
                    members: BTreeMap::from([(
                        caller.id,
                        Member {
                            user: caller,
                            offline_since: None,
                        },
                    )]),
                    next_seq: 1,
                    recent: VecDeque::new(),
                    recent_bytes: 0,
                };
                let answer = EphemeralAnswer::Group(group.view(id));
                let event = group.members_event(id, None);
                self.groups.insert(id, group);
                Ok((answer, vec![event]))
            }
            EphemeralCommand::Add { group: id, user } => {
                let group = self.member_group(id, caller.id)?;
                let event = match group.members.entry(user.id) {
                    std::collections::btree_map::Entry::Occupied(_) => None,
                    std::collections::btree_map::Entry::Vacant(vacant) => {
                        vacant.insert(Member {
                            user,
                            offline_since: None,
                        });
                        Some(group.members_event(id, None))
                    }
                };
                Ok((
                    EphemeralAnswer::Group(group.view(id)),
                    event.into_iter().collect(),
                ))
            }
            EphemeralCommand::Leave { group: id } => {
                let group = self.member_group(id, caller.id)?;
                group.members.remove(&caller.id);
                let mut events = vec![group.members_event(id, Some(caller.id))];
                if group.members.is_empty() {
                    self.groups.remove(&id);
                    events.push(EphemeralEvent::Ended {
                        group: id,
                        members: vec![caller.id],
                        reason: EndReason::Empty,
                    });
                }
                Ok((EphemeralAnswer::Left, events))
            }
            EphemeralCommand::Post { group: id, content } => {
                let content = Content::parse(&content)?.into_string();
                let group = self.member_group(id, caller.id)?;
                let message = EphemeralMessage {
                    id: MessageId(fresh()),
                    group: id,
                    seq: group.next_seq,
                    sender: caller,
                    content,
                    created_at: now,
                };
                group.next_seq += 1;
                group.recent_bytes += message.content.len();
                group.recent.push_back(message.clone());
                while group.recent.len() > WINDOW || group.recent_bytes > WINDOW_BYTES {
                    let Some(oldest) = group.recent.pop_front() else {
                        break;
                    };
                    group.recent_bytes -= oldest.content.len();
                }
                let event = EphemeralEvent::Message {
                    members: group.member_ids(),
                    message: message.clone(),
                };
                Ok((EphemeralAnswer::Message(message), vec![event]))
            }
            EphemeralCommand::Get { group: id } => {
                let group = self.member_group(id, caller.id)?;
                Ok((EphemeralAnswer::Group(group.view(id)), Vec::new()))
            }
        }
    }

    /// The group `id` if `user` is a member: 404 when there is no such group (or it ended), 403 when
    /// the user is not in it.
    fn member_group(&mut self, id: GroupId, user: UserId) -> Result<&mut Group, ServiceError> {
        let group = self
            .groups
            .get_mut(&id)
            .ok_or(ServiceError::NotFound(Resource::Group))?;
        if !group.members.contains_key(&user) {
            return Err(ServiceError::Forbidden(
                "you are not a member of this group".into(),
            ));
        }
        Ok(group)
    }

    /// Drops members offline for [`GRACE`] by `now` (as `online` tells), and ends groups left without
    /// members.
    pub fn sweep(&mut self, online: &BTreeSet<UserId>, now: UnixMillis) -> Vec<EphemeralEvent> {
        let grace = GRACE.as_millis() as i64;
        let mut events = Vec::new();
        let mut ended = Vec::new();
        for (id, group) in &mut self.groups {
            let mut gone = Vec::new();
            for (user, member) in &mut group.members {
                if online.contains(user) {
                    member.offline_since = None;
                    continue;
                }
                let since = *member.offline_since.get_or_insert(now);
                if now.0.saturating_sub(since.0) >= grace {
                    gone.push(*user);
                }
            }
            if gone.is_empty() {
                continue;
            }
            for user in &gone {
                group.members.remove(user);
            }
            if group.members.is_empty() {
                ended.push(*id);
                events.push(EphemeralEvent::Ended {
                    group: *id,
                    members: gone,
                    reason: EndReason::Empty,
                });
            } else {
                for user in gone {
                    events.push(group.members_event(*id, Some(user)));
                }
            }
        }
        for id in ended {
            self.groups.remove(&id);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128, name: &str) -> UserRef {
        UserRef {
            id: UserId(uuid::Uuid::from_u128(n)),
            username: name.into(),
            tag: "0001".parse().unwrap(),
        }
    }

    fn ids() -> impl FnMut() -> uuid::Uuid {
        let mut next = 1000u128;
        move || {
            next += 1;
            uuid::Uuid::from_u128(next)
        }
    }

    fn run(
        groups: &mut EphemeralGroups,
        caller: &UserRef,
        command: EphemeralCommand,
        fresh: &mut impl FnMut() -> uuid::Uuid,
    ) -> Result<(EphemeralAnswer, Vec<EphemeralEvent>), ServiceError> {
        let request = EphemeralRequest {
            caller: caller.clone(),
            command,
        };
        groups.apply(request, UnixMillis(5), fresh)
    }

    fn create(
        groups: &mut EphemeralGroups,
        by: &UserRef,
        fresh: &mut impl FnMut() -> uuid::Uuid,
    ) -> GroupId {
        match run(
            groups,
            by,
            EphemeralCommand::Create { name: "now".into() },
            fresh,
        ) {
            Ok((EphemeralAnswer::Group(view), _)) => view.id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_numbered_in_one_order_and_reach_the_members() {
        let (ada, bob) = (user(1, "ada"), user(2, "bob"));
        let mut fresh = ids();
        let mut groups = EphemeralGroups::default();
        let group = create(&mut groups, &ada, &mut fresh);
        let add = EphemeralCommand::Add {
            group,
            user: bob.clone(),
        };
        run(&mut groups, &ada, add, &mut fresh).unwrap();
        let mut seqs = Vec::new();
        for (who, text) in [(&ada, "one"), (&bob, "two"), (&ada, "three")] {
            let post = EphemeralCommand::Post {
                group,
                content: text.into(),
            };
            let (answer, events) = run(&mut groups, who, post, &mut fresh).unwrap();
            let EphemeralAnswer::Message(message) = answer else {
                panic!("{answer:?}")
            };
            seqs.push(message.seq);
            assert_eq!(
                events,
                vec![EphemeralEvent::Message {
                    members: vec![ada.id, bob.id],
                    message
                }]
            );
        }
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_late_member_gets_the_window_and_strangers_get_nothing() {
        let (ada, bob, eve) = (user(1, "ada"), user(2, "bob"), user(3, "eve"));
        let mut fresh = ids();
        let mut groups = EphemeralGroups::default();
        let group = create(&mut groups, &ada, &mut fresh);
        for n in 0..(WINDOW + 5) {
            let post = EphemeralCommand::Post {
                group,
                content: format!("m{n}"),
            };
            run(&mut groups, &ada, post, &mut fresh).unwrap();
        }
        let add = EphemeralCommand::Add {
            group,
            user: bob.clone(),
        };
        let (EphemeralAnswer::Group(view), events) =
            run(&mut groups, &ada, add, &mut fresh).unwrap()
        else {
            panic!()
        };
        assert_eq!(view.messages.len(), WINDOW);
        assert_eq!(
            view.messages[0].seq, 6,
            "the oldest five fell out of the window"
        );
        assert!(
            matches!(&events[..], [EphemeralEvent::Members { members, .. }] if members.len() == 2)
        );
        let peek = run(
            &mut groups,
            &eve,
            EphemeralCommand::Get { group },
            &mut fresh,
        );
        assert!(matches!(peek, Err(ServiceError::Forbidden(_))), "{peek:?}");
        let post = EphemeralCommand::Post {
            group,
            content: "hi".into(),
        };
        assert!(matches!(
            run(&mut groups, &eve, post, &mut fresh),
            Err(ServiceError::Forbidden(_))
        ));
        let unknown = EphemeralCommand::Get {
            group: GroupId(uuid::Uuid::from_u128(9)),
        };
        assert!(matches!(
            run(&mut groups, &ada, unknown, &mut fresh),
            Err(ServiceError::NotFound(_))
        ));
        let empty = EphemeralCommand::Post {
            group,
            content: "  ".into(),
        };
        assert!(matches!(
            run(&mut groups, &ada, empty, &mut fresh),
            Err(ServiceError::Invalid(_))
        ));
    }

    #[test]
    fn the_window_is_bounded_in_bytes_too() {
        let ada = user(1, "ada");
        let mut fresh = ids();
        let mut groups = EphemeralGroups::default();
        let group = create(&mut groups, &ada, &mut fresh);
        let long = "x".repeat(4000);
        for _ in 0..100 {
            let post = EphemeralCommand::Post {
                group,
                content: long.clone(),
            };
            run(&mut groups, &ada, post, &mut fresh).unwrap();
        }
        let (EphemeralAnswer::Group(view), _) = run(
            &mut groups,
            &ada,
            EphemeralCommand::Get { group },
            &mut fresh,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(view.messages.len(), WINDOW_BYTES / 4000);
        assert_eq!(view.messages.last().map(|message| message.seq), Some(100));
    }

    #[test]
    fn a_group_ends_when_its_last_member_leaves() {
        let ada = user(1, "ada");
        let mut fresh = ids();
        let mut groups = EphemeralGroups::default();
        let group = create(&mut groups, &ada, &mut fresh);
        let (_, events) = run(
            &mut groups,
            &ada,
            EphemeralCommand::Leave { group },
            &mut fresh,
        )
        .unwrap();
        assert_eq!(
            events.last(),
            Some(&EphemeralEvent::Ended {
                group,
                members: vec![ada.id],
                reason: EndReason::Empty
            })
        );
        assert!(groups.is_empty());
    }

    #[test]
    fn members_offline_past_the_grace_period_are_dropped_and_the_group_ends_without_any() {
        let (ada, bob) = (user(1, "ada"), user(2, "bob"));
        let mut fresh = ids();
        let mut groups = EphemeralGroups::default();
        let group = create(&mut groups, &ada, &mut fresh);
        let add = EphemeralCommand::Add {
            group,
            user: bob.clone(),
        };
        run(&mut groups, &ada, add, &mut fresh).unwrap();
        let grace = GRACE.as_millis() as i64;
        let only_ada = BTreeSet::from([ada.id]);
        assert!(groups.sweep(&only_ada, UnixMillis(0)).is_empty());
        assert!(groups.sweep(&only_ada, UnixMillis(grace - 1)).is_empty());
        let events = groups.sweep(&only_ada, UnixMillis(grace));
        assert!(
            matches!(&events[..], [EphemeralEvent::Members { left: Some(left), .. }] if *left == bob.id),
            "{events:?}"
        );
        // Ada goes offline, comes back within the grace period, then goes for good.
        let nobody = BTreeSet::new();
        assert!(groups.sweep(&nobody, UnixMillis(grace + 10)).is_empty());
        assert!(groups.sweep(&only_ada, UnixMillis(grace + 20)).is_empty());
        assert!(groups.sweep(&nobody, UnixMillis(2 * grace)).is_empty());
        let events = groups.sweep(&nobody, UnixMillis(3 * grace));
        assert_eq!(
            events,
            vec![EphemeralEvent::Ended {
                group,
                members: vec![ada.id],
                reason: EndReason::Empty
            }]
        );
        assert!(groups.is_empty());
    }
}
