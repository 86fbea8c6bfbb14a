-- The chat schema (DESIGN §5). Every row stores the epoch of the write that created it, and soft-deleted
-- rows also the epoch of the write that deleted them, so replicas can be compared row by row and a row's
-- age is known in the writer's total order. Timestamps are unix milliseconds (UTC): ordered, compact and
-- rendered as RFC 3339 only at the API edge. Ids are lowercase hyphenated uuids.
-- STRICT tables: SQLite refuses a value of the wrong type instead of silently storing it.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    tag           INTEGER NOT NULL CHECK (tag BETWEEN 0 AND 9999),
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    epoch         INTEGER NOT NULL,
    deleted_epoch INTEGER,
    UNIQUE (username, tag)
) STRICT;

-- Kept apart from `users` so that no query listing users can leak a hash by accident.
CREATE TABLE user_secrets (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (id),
    password_hash TEXT    NOT NULL,
    epoch         INTEGER NOT NULL
) STRICT;

CREATE TABLE groups (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    creator_id    TEXT    NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    epoch         INTEGER NOT NULL,
    deleted_epoch INTEGER
) STRICT;

-- Current members only: leaving deletes the row (the replication log is the history).
CREATE TABLE memberships (
    group_id      TEXT    NOT NULL REFERENCES groups (id),
    user_id       TEXT    NOT NULL REFERENCES users (id),
    joined_at     INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

-- "The groups of a user".
CREATE INDEX memberships_by_user ON memberships (user_id, group_id);

-- `chat_id` is the group's id for a group message and `dm:<smaller user id>:<larger user id>` for a
-- direct message, so one index serves both kinds of history. One write creates at most one message, so
-- the creating epoch is unique and is the paging key. NULL client ids never collide (SQLite UNIQUE).
CREATE TABLE messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    chat_id       TEXT    NOT NULL,
    sender_id     TEXT    NOT NULL REFERENCES users (id),
    receiver_id   TEXT             REFERENCES users (id),
    content       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    epoch         INTEGER NOT NULL UNIQUE,
    deleted_epoch INTEGER,
    client_id     TEXT,
    UNIQUE (sender_id, client_id)
) STRICT;

-- History pages: newest first below an epoch, within one chat.
CREATE INDEX messages_by_chat ON messages (chat_id, epoch);

-- One row: how far this database has progressed in the writer's log, and under which term.
CREATE TABLE system_state (
    id            INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    epoch         INTEGER NOT NULL,
    term          INTEGER NOT NULL
) STRICT;

INSERT INTO system_state (id, epoch, term) VALUES (1, 0, 0);
