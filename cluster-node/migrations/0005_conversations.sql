-- What a chat app needs beyond posting (DESIGN §5): edits, replies, reactions, read markers, the list of
-- a user's direct chats, and full-text search. Everything here is written by `apply` from log entries or
-- derived by triggers from rows `apply` writes, so every copy holds the same rows and can answer reads
-- and searches itself.

-- An edit keeps the message's creating epoch (its place in the history) and records its own.
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN edited_epoch INTEGER;
-- The quoted message of a reply, in the same chat (the writer checked it). Not a foreign key: the quote
-- may be deleted later and the reply stays.
ALTER TABLE messages ADD COLUMN reply_to TEXT;

-- One row per (message, emoji, user). `created_at` orders a message's chips by their first reaction.
CREATE TABLE reactions (
    message_id    TEXT    NOT NULL REFERENCES messages (id),
    emoji         TEXT    NOT NULL,
    user_id       TEXT    NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
) STRICT, WITHOUT ROWID;

-- How far each user has read each chat, as an epoch: only ever moves forward.
CREATE TABLE read_markers (
    user_id       TEXT    NOT NULL REFERENCES users (id),
    chat_id       TEXT    NOT NULL,
    read_epoch    INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    PRIMARY KEY (user_id, chat_id)
) STRICT, WITHOUT ROWID;

-- The direct chats of each user and who is on the other side, so that a user's chat list never scans
-- their messages. Derived from `messages` by a trigger; a chat with oneself has one row.
CREATE TABLE direct_chats (
    user_id       TEXT    NOT NULL REFERENCES users (id),
    chat_id       TEXT    NOT NULL,
    peer_id       TEXT    NOT NULL REFERENCES users (id),
    PRIMARY KEY (user_id, chat_id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO direct_chats (user_id, chat_id, peer_id)
    SELECT sender_id, chat_id, receiver_id FROM messages WHERE receiver_id IS NOT NULL;
INSERT OR IGNORE INTO direct_chats (user_id, chat_id, peer_id)
    SELECT receiver_id, chat_id, sender_id FROM messages WHERE receiver_id IS NOT NULL;

CREATE TRIGGER direct_chats_on_message AFTER INSERT ON messages WHEN new.receiver_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO direct_chats (user_id, chat_id, peer_id)
        VALUES (new.sender_id, new.chat_id, new.receiver_id), (new.receiver_id, new.chat_id, new.sender_id);
END;

-- Search over live messages. Contentless (the text stays in `messages` only) and keyed by the message's
-- creating epoch, which is unique and, unlike a rowid of a table without an INTEGER PRIMARY KEY, never
-- renumbered. `remove_diacritics 2` lets "cafe" find "café". Triggers keep it in step on every copy.
CREATE VIRTUAL TABLE messages_search USING fts5(
    content,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

INSERT INTO messages_search (rowid, content)
    SELECT epoch, content FROM messages WHERE deleted_at IS NULL;

CREATE TRIGGER messages_search_on_insert AFTER INSERT ON messages WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO messages_search (rowid, content) VALUES (new.epoch, new.content);
END;

-- An edit re-indexes the new text; a deletion removes the message from the index.
CREATE TRIGGER messages_search_on_update AFTER UPDATE OF content, deleted_at ON messages
BEGIN
    DELETE FROM messages_search WHERE rowid = old.epoch;
    INSERT INTO messages_search (rowid, content) SELECT new.epoch, new.content WHERE new.deleted_at IS NULL;
END;
