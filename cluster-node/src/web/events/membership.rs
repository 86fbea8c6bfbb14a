//! What a committed entry means to one listener: the groups they belong to as the stream sees them, and
//! the classification of each entry (a message they may read, a deletion, a membership change, ...). Pure:
//! no I/O, so the rules are tested entry by entry.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::storage::{ChatId, Epoch, GroupId, LogEntry, MessageId, Mutation, UserId};

/// The groups one user belongs to, as a stream sees them: the service's answer at `known_at`, then the
/// changes of later entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub(crate) me: UserId,
    pub(crate) groups: HashSet<GroupId>,
    pub(crate) known_at: Epoch,
}

/// What an entry means to one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Relevant {
    Message,
    Deleted {
        message: MessageId,
        chat: ChatId,
    },
    Membership {
        group: GroupId,
        user: UserId,
        change: Change,
    },
    /// A message of a visible chat was edited or reacted to.
    Changed,
    /// The listener moved their own read marker (heard by their other tabs and devices).
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    Created,
    Joined,
    Left,
    Deleted,
}

impl Membership {
    pub(crate) fn new(
        me: UserId,
        groups: impl IntoIterator<Item = GroupId>,
        known_at: Epoch,
    ) -> Self {
        Membership {
            me,
            groups: groups.into_iter().collect(),
            known_at,
        }
    }

    pub(crate) fn sees(&self, chat: ChatId) -> bool {
        match chat {
            ChatId::Group(group) => self.groups.contains(&group),
            ChatId::Direct(one, other) => one == self.me || other == self.me,
        }
    }

    fn change(&mut self, epoch: Epoch, group: GroupId, member: bool) {
        if epoch > self.known_at {
            if member {
                self.groups.insert(group);
            } else {
                self.groups.remove(&group);
            }
        }
    }

    /// Updates the membership from `entry` and says whether and how the user should hear of it.
    /// `chat_of` tells the chat of a deleted message, when known.
    pub(crate) fn classify(
        &mut self,
        entry: &LogEntry,
        chat_of: impl Fn(MessageId) -> Option<ChatId>,
    ) -> Option<Relevant> {
        let epoch = entry.epoch;
        match &entry.mutation {
            Mutation::PostMessage(message) => self.sees(message.chat).then_some(Relevant::Message),
            Mutation::DeleteMessage { message, .. } => {
                let chat = chat_of(*message)?;
                self.sees(chat).then_some(Relevant::Deleted {
                    message: *message,
                    chat,
                })
            }
            Mutation::CreateGroup(group) => {
                if group.creator != self.me {
                    return None;
                }
                self.change(epoch, group.id, true);
                Some(Relevant::Membership {
                    group: group.id,
                    user: self.me,
                    change: Change::Created,
                })
            }
            Mutation::AddMember { group, user, .. } => {
                if *user == self.me {
                    self.change(epoch, *group, true);
                }
                self.groups.contains(group).then_some(Relevant::Membership {
                    group: *group,
                    user: *user,
                    change: Change::Joined,
                })
            }
            Mutation::RemoveMember { group, user } => {
                let relevant = self.groups.contains(group) || *user == self.me;
                if *user == self.me {
                    self.change(epoch, *group, false);
                }
                relevant.then_some(Relevant::Membership {
                    group: *group,
                    user: *user,
                    change: Change::Left,
                })
            }
            Mutation::DeleteGroup { group, .. } => {
                let relevant = self.groups.contains(group);
                self.change(epoch, *group, false);
                relevant.then_some(Relevant::Membership {
                    group: *group,
                    user: self.me,
                    change: Change::Deleted,
                })
            }
            Mutation::EditMessage { chat, .. } | Mutation::SetReaction { chat, .. } => {
                self.sees(*chat).then_some(Relevant::Changed)
            }
            Mutation::MarkRead { user, .. } => (*user == self.me).then_some(Relevant::Read),
            Mutation::RegisterUser(_) | Mutation::Configure { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entries::{entry, post};
    use super::*;
    use crate::storage::UnixMillis;
    use crate::storage::groups::NewGroup;

    fn no_chats(_: MessageId) -> Option<ChatId> {
        None
    }

    #[test]
    fn a_user_hears_of_messages_in_their_groups_and_direct_chats_only() {
        let (me, peer, stranger) = (UserId::random(), UserId::random(), UserId::random());
        let (mine, other) = (GroupId::random(), GroupId::random());
        let mut membership = Membership::new(me, [mine], Epoch(10));

        let heard = |membership: &mut Membership, mutation| {
            membership
                .classify(&entry(11, mutation), no_chats)
                .is_some()
        };

        assert!(heard(&mut membership, post(ChatId::Group(mine), peer)));
        assert!(!heard(&mut membership, post(ChatId::Group(other), peer)));
        assert!(heard(&mut membership, post(ChatId::direct(peer, me), peer)));
        assert!(!heard(
            &mut membership,
            post(ChatId::direct(peer, stranger), peer)
        ));
    }

    #[test]
    fn joining_and_leaving_after_the_known_epoch_change_what_a_user_hears() {
        let (me, peer) = (UserId::random(), UserId::random());
        let group = GroupId::random();
        let mut membership = Membership::new(me, [], Epoch(10));

        let joined = membership.classify(
            &entry(
                11,
                Mutation::AddMember {
                    group,
                    user: me,
                    joined_at: UnixMillis(0),
                },
            ),
            no_chats,
        );
        let message = membership.classify(&entry(12, post(ChatId::Group(group), peer)), no_chats);
        let left = membership.classify(
            &entry(13, Mutation::RemoveMember { group, user: me }),
            no_chats,
        );
        let after = membership.classify(&entry(14, post(ChatId::Group(group), peer)), no_chats);

        assert!(matches!(
            joined,
            Some(Relevant::Membership {
                change: Change::Joined,
                ..
            })
        ));
        assert_eq!(message, Some(Relevant::Message));
        assert!(matches!(
            left,
            Some(Relevant::Membership {
                change: Change::Left,
                ..
            })
        ));
        assert_eq!(after, None);
    }

    #[test]
    fn membership_changes_at_or_before_the_known_epoch_are_already_counted() {
        let me = UserId::random();
        let group = GroupId::random();
        let mut membership = Membership::new(me, [group], Epoch(10));

        // An old "left" replayed from the ring must not undo the current membership.
        membership.classify(
            &entry(9, Mutation::RemoveMember { group, user: me }),
            no_chats,
        );

        assert!(membership.sees(ChatId::Group(group)));
    }

    #[test]
    fn a_deletion_is_heard_only_when_its_chat_is_known_and_visible() {
        let me = UserId::random();
        let group = GroupId::random();
        let message = MessageId::random();
        let mut membership = Membership::new(me, [group], Epoch(0));
        let deletion = entry(
            5,
            Mutation::DeleteMessage {
                message,
                deleted_at: UnixMillis(0),
            },
        );

        assert_eq!(membership.classify(&deletion, no_chats), None);
        assert_eq!(
            membership.classify(&deletion, |_| Some(ChatId::Group(group))),
            Some(Relevant::Deleted {
                message,
                chat: ChatId::Group(group)
            })
        );
        assert_eq!(
            membership.classify(&deletion, |_| Some(ChatId::Group(GroupId::random()))),
            None
        );
    }

    #[test]
    fn a_created_group_is_joined_by_its_creator() {
        let me = UserId::random();
        let group = NewGroup {
            id: GroupId::random(),
            name: "g".into(),
            creator: me,
            created_at: UnixMillis(0),
        };
        let id = group.id;
        let mut membership = Membership::new(me, [], Epoch(0));

        let created = membership.classify(&entry(1, Mutation::CreateGroup(group)), no_chats);

        assert!(created.is_some());
        assert!(membership.sees(ChatId::Group(id)));
    }

    #[test]
    fn edits_and_reactions_follow_the_chat_and_read_markers_their_owner() {
        let (me, peer) = (UserId::random(), UserId::random());
        let (mine, other) = (GroupId::random(), GroupId::random());
        let mut membership = Membership::new(me, [mine], Epoch(0));
        let edit = |chat| Mutation::EditMessage {
            message: MessageId::random(),
            chat,
            content: "new".into(),
            edited_at: UnixMillis(0),
        };
        let react = |chat| Mutation::SetReaction {
            message: MessageId::random(),
            chat,
            user: peer,
            emoji: "👍".into(),
            on: true,
            count: 1,
            at: UnixMillis(0),
        };
        let read = |user| Mutation::MarkRead {
            user,
            chat: ChatId::Group(mine),
            read_epoch: Epoch(1),
        };
        let mut heard = |mutation| membership.classify(&entry(1, mutation), no_chats);

        assert_eq!(heard(edit(ChatId::Group(mine))), Some(Relevant::Changed));
        assert_eq!(heard(edit(ChatId::Group(other))), None);
        assert_eq!(
            heard(react(ChatId::direct(me, peer))),
            Some(Relevant::Changed)
        );
        assert_eq!(heard(react(ChatId::direct(peer, peer))), None);
        assert_eq!(heard(read(me)), Some(Relevant::Read));
        assert_eq!(heard(read(peer)), None);
    }
}
